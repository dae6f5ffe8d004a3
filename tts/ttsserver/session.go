package ttsserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/voicebridge/voicebridge/tts"
)

// Error codes the embedded munsit dialect sends (the seed shows 40101 and
// 40001; 50001 is ours for injected and synthesis failures).
const (
	munsitCodeBadRequest = 40001
	munsitCodeAuth       = 40101
	munsitCodeInternal   = 50001
)

// session is one WebSocket connection of the embedded server. The
// ServeHTTP goroutine reads; writeLoop is the only writer and runs the
// generations one after another.
type session struct {
	s      *Server
	d      tts.Dialect
	ws     *websocket.Conn
	log    *slog.Logger
	faulty bool // Faults' error/drop apply to this connection

	ctx    context.Context
	cancel context.CancelFunc
	ctrl   chan ctrlMsg // reader → writer: init acks and errors
	wake   chan struct{}
	wdone  chan struct{}

	headerKey    string // key from the x-api-key header or query
	hasHeaderKey bool

	// reader-only
	initialized bool
	text        strings.Builder

	mu    sync.Mutex
	jobs  []*genJob // guarded by mu: triggered, not started
	cur   *genJob   // guarded by mu: running
	voice string    // guarded by mu (set at init)
	rate  int       // guarded by mu
	speed float64   // guarded by mu

	// writer-only
	chunks int // audio chunks sent on this connection
	fired  bool
	enc    []byte
	rng    *rand.Rand
	timer  *time.Timer
}

type genJob struct {
	text   string
	at     time.Time
	ctx    context.Context
	cancel context.CancelFunc
	lag    *time.Timer // guarded by session.mu: a lagging clear's cancel
}

type ctrlMsg struct {
	data  []byte
	pong  []byte // non-nil: a pong with this payload
	close int    // >0: send a close frame with this code after data, then end
}

func newSession(s *Server, d tts.Dialect, ws *websocket.Conn, r *http.Request) *session {
	ss := &session{
		s:     s,
		d:     d,
		ws:    ws,
		log:   s.log,
		ctrl:  make(chan ctrlMsg, 8),
		wake:  make(chan struct{}, 1),
		wdone: make(chan struct{}),
		rate:  24000,
		speed: 1,
	}
	n := s.accepted.Add(1)
	f := s.cfg.Faults
	ss.faulty = f.Times <= 0 || n <= int64(f.Times)
	ss.rng = rand.New(rand.NewPCG(f.Seed, uint64(n)))
	ss.ctx, ss.cancel = context.WithCancel(s.ctx)
	if k := r.Header.Get("x-api-key"); k != "" {
		ss.headerKey, ss.hasHeaderKey = k, true
	} else if r.URL.Query().Has("x-api-key") {
		ss.headerKey, ss.hasHeaderKey = r.URL.Query().Get("x-api-key"), true
	}
	return ss
}

// abort ends the session from another goroutine (Server.Close).
func (ss *session) abort() {
	ss.cancel()
	ss.ws.Close()
}

// serve is the reader: it runs on the ServeHTTP goroutine.
func (ss *session) serve() {
	ss.timer = time.NewTimer(time.Hour)
	go ss.writeLoop()
	defer func() {
		ss.clearJobs()
		ss.cancel()
		<-ss.wdone
		ss.ws.Close()
	}()
	ss.ws.SetReadLimit(ss.s.cfg.ReadLimit)
	// Pongs go through the writer, after any chunk it is writing and after
	// a clear read before the ping has stopped the generation: every chunk
	// after the pong is new audio. With ReaderPongs they leave at once, as
	// from a hosted service (WriteControl may run beside the writer).
	ss.ws.SetPingHandler(func(app string) error {
		if ss.s.cfg.Faults.ReaderPongs {
			err := ss.ws.WriteControl(websocket.PongMessage, []byte(app), time.Now().Add(10*time.Second))
			if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
				return err
			}
			return nil
		}
		ss.send(ctrlMsg{pong: []byte(app)})
		return nil
	})
	for {
		_, data, err := ss.ws.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) && ss.ctx.Err() == nil {
				ss.log.Debug("tts-server: read", "err", err)
			}
			if err == websocket.ErrReadLimit {
				ss.sendError(munsitCodeBadRequest, "message too large", websocket.CloseMessageTooBig)
			}
			return
		}
		if f := ss.s.cfg.OnMessage; f != nil {
			f(ss.d, data)
		}
		m, perr := parseClientMessage(ss.d, data)
		if perr != nil {
			ss.sendError(munsitCodeBadRequest, "Invalid message: "+perr.Error(), 0)
			continue
		}
		if m.kind != clientInit && !ss.initialized {
			if m.kind == clientClose {
				ss.closeNormally()
				return
			}
			ss.sendError(munsitCodeBadRequest, "Connection not initialized: send initConnection first", 0)
			continue
		}
		switch m.kind {
		case clientInit:
			if ss.initialized {
				ss.sendError(munsitCodeBadRequest, "Connection already initialized", 0)
				continue
			}
			if msg, ok := ss.authorize(m); !ok {
				ss.sendError(munsitCodeAuth, msg, websocket.ClosePolicyViolation)
				<-ss.wdone
				return
			}
			ss.mu.Lock()
			ss.voice = m.voiceID
			if m.outputFormat != "" {
				ss.rate, _ = tts.FormatSampleRate(m.outputFormat)
			}
			if m.speed != nil {
				ss.speed = *m.speed
			}
			ss.mu.Unlock()
			ss.initialized = true
			ss.send(ctrlMsg{data: msgConnectionInitialized})
		case clientText:
			ss.text.WriteString(m.text)
			if m.flush || m.trigger {
				ss.trigger(ss.text.String())
				ss.text.Reset()
			}
		case clientClear:
			ss.text.Reset()
			ss.clearJobsAfter(ss.s.cfg.Faults.ClearLag)
		case clientClose:
			ss.closeNormally()
			return
		}
	}
}

// authorize checks the key of every placement given.
func (ss *session) authorize(m clientMsg) (string, bool) {
	cfg := &ss.s.cfg
	if cfg.Faults.RefuseAuth {
		return "Invalid API key", false
	}
	if cfg.APIKey == "" {
		return "", true
	}
	if !ss.hasHeaderKey && !m.hasAPIKey {
		return "API key required", false
	}
	if ss.hasHeaderKey && ss.headerKey != cfg.APIKey || m.hasAPIKey && m.apiKey != cfg.APIKey {
		return "Invalid API key", false
	}
	return "", true
}

func (ss *session) send(m ctrlMsg) {
	select {
	case ss.ctrl <- m:
	case <-ss.ctx.Done():
	}
}

func (ss *session) closeNormally() {
	ss.clearJobs()
	ss.send(ctrlMsg{close: websocket.CloseNormalClosure})
	<-ss.wdone
}

// sendError sends an error in the dialect's shape; closeCode > 0 also
// closes the connection.
func (ss *session) sendError(code int, msg string, closeCode int) {
	ss.send(ctrlMsg{data: ss.errorMsg(code, msg), close: closeCode})
}

func (ss *session) errorMsg(code int, msg string) []byte {
	var b []byte
	if ss.d == tts.DialectMunsit {
		b, _ = json.Marshal(munsitError{Type: "error", ErrorCode: code, ErrorMessage: msg})
	} else {
		b, _ = json.Marshal(faseehError{Type: "error", Message: msg})
	}
	return b
}

// trigger queues a generation of text (faseeh: even an empty one ends with
// an isFinal chunk).
func (ss *session) trigger(text string) {
	j := &genJob{text: text, at: time.Now()}
	j.ctx, j.cancel = context.WithCancel(ss.ctx)
	ss.mu.Lock()
	ss.jobs = append(ss.jobs, j)
	ss.mu.Unlock()
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// clearJobs stops the running generation (killing its espeak-ng if nobody
// else waits for it) and drops the queued ones.
func (ss *session) clearJobs() { ss.clearJobsAfter(0) }

// clearJobsAfter is clearJobs, except that the running generation goes on
// for lag (Faults.ClearLag). Its timer dies with the job (its context).
func (ss *session) clearJobsAfter(lag time.Duration) {
	ss.mu.Lock()
	for _, j := range ss.jobs {
		j.cancel()
	}
	ss.jobs = nil
	if j := ss.cur; j != nil {
		if lag <= 0 {
			j.cancel()
		} else if j.lag == nil {
			j.lag = time.AfterFunc(lag, j.cancel)
		}
	}
	ss.mu.Unlock()
}

func (ss *session) nextJob() (*genJob, string, int, float64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.cur = nil
	if len(ss.jobs) == 0 {
		return nil, "", 0, 0
	}
	j := ss.jobs[0]
	ss.jobs = ss.jobs[1:]
	ss.cur = j
	return j, ss.voice, ss.rate, ss.speed
}

// writeLoop is the connection's only writer.
func (ss *session) writeLoop() {
	defer close(ss.wdone)
	defer ss.timer.Stop()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case m := <-ss.ctrl:
			if !ss.writeCtrl(m) {
				return
			}
		case <-ss.wake:
		}
		for {
			j, voice, rate, speed := ss.nextJob()
			if j == nil {
				break
			}
			ok := ss.generate(j, voice, rate, speed)
			j.cancel()
			ss.mu.Lock()
			if j.lag != nil {
				j.lag.Stop()
			}
			ss.mu.Unlock()
			if !ok {
				return
			}
		}
	}
}

func (ss *session) write(data []byte) bool {
	_ = ss.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := ss.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		ss.cancel()
		return false
	}
	return true
}

// writeCtrl writes m; false ends the writer.
func (ss *session) writeCtrl(m ctrlMsg) bool {
	if m.pong != nil {
		if err := ss.ws.WriteControl(websocket.PongMessage, m.pong, time.Now().Add(10*time.Second)); err != nil {
			ss.cancel()
			return false
		}
		return true
	}
	if m.data != nil && !ss.write(m.data) {
		return false
	}
	if m.close > 0 {
		_ = ss.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(m.close, ""), time.Now().Add(time.Second))
		ss.cancel()
		ss.ws.Close()
		return false
	}
	return true
}
