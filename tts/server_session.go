package tts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
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
	d      Dialect
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
}

type ctrlMsg struct {
	data  []byte
	pong  []byte // non-nil: a pong with this payload
	close int    // >0: send a close frame with this code after data, then end
}

func newSession(s *Server, d Dialect, ws *websocket.Conn, r *http.Request) *session {
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
	// Pongs go through the writer, after any chunk it is writing: a client
	// that pings after "clear" (see Client.Clear) then knows that every
	// chunk after the pong is new audio.
	ss.ws.SetPingHandler(func(app string) error {
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
				ss.rate = OutputFormats[m.outputFormat]
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
			ss.clearJobs()
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
	if ss.d == DialectMunsit {
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
func (ss *session) clearJobs() {
	ss.mu.Lock()
	for _, j := range ss.jobs {
		j.cancel()
	}
	ss.jobs = nil
	if ss.cur != nil {
		ss.cur.cancel()
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

// drainCtrl writes the control messages already queued, so that they keep
// their order relative to what the reader received (a pong after a clear
// precedes the audio of text sent after it). False ends the writer.
func (ss *session) drainCtrl() bool {
	for {
		select {
		case m := <-ss.ctrl:
			if !ss.writeCtrl(m) {
				return false
			}
		default:
			return true
		}
	}
}

// waitUntil waits for t while serving control messages. False: the job
// was cancelled or the connection ended.
func (ss *session) waitUntil(j *genJob, t time.Time) (bool, bool) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return true, true
		}
		ss.timer.Reset(d)
		select {
		case <-ss.timer.C:
			return true, true
		case m := <-ss.ctrl:
			ss.timer.Stop()
			if !ss.writeCtrl(m) {
				return false, false
			}
		case <-j.ctx.Done():
			ss.timer.Stop()
			return false, ss.ctx.Err() == nil
		}
	}
}

// generate speaks one job. It returns false when the connection must end.
func (ss *session) generate(j *genJob, voice string, rate int, speed float64) bool {
	cfg := &ss.s.cfg
	pcm, err := ss.s.synth.pcm(j.ctx, j.text, voice, rate, speed)
	if err != nil {
		if j.ctx.Err() != nil {
			return ss.ctx.Err() == nil
		}
		ss.log.Debug("tts-server: synthesis failed", "err", err)
		return ss.write(ss.errorMsg(munsitCodeInternal, "Synthesis failed"))
	}
	if cfg.FirstChunkDelay > 0 {
		if ok, alive := ss.waitUntil(j, j.at.Add(cfg.FirstChunkDelay)); !ok {
			return alive
		}
	}
	f := &cfg.Faults
	start := time.Now()
	var played time.Duration // audio sent so far in this generation
	genChunks := 0
	for off := 0; off < len(pcm); {
		if f.SwitchRateAfterChunks > 0 && genChunks == f.SwitchRateAfterChunks && supportedRate(f.SwitchRate) && f.SwitchRate != rate {
			other, err := ss.s.synth.pcm(j.ctx, j.text, voice, f.SwitchRate, speed)
			if err != nil {
				return ss.ctx.Err() == nil
			}
			off = int(int64(off/2)*int64(f.SwitchRate)/int64(rate)) * 2
			pcm, rate = other, f.SwitchRate
			if off >= len(pcm) {
				break
			}
		}
		n := min(ss.chunkLen(rate), len(pcm)-off)
		if cfg.Pace > 0 {
			due := start.Add(time.Duration(float64(played) / float64(cfg.Pace)))
			if ok, alive := ss.waitUntil(j, due); !ok {
				return alive
			}
		} else if j.ctx.Err() != nil {
			return ss.ctx.Err() == nil
		}
		if ss.faulty && !ss.fired {
			if f.ErrorAfterChunks > 0 && ss.chunks == f.ErrorAfterChunks {
				ss.fired = true
				return ss.write(ss.errorMsg(munsitCodeInternal, "Internal error (injected fault)"))
			}
			if f.DropAfterChunks > 0 && ss.chunks == f.DropAfterChunks {
				ss.fired = true
				ss.ws.NetConn().Close() // no close frame: a dropped connection
				ss.cancel()
				return false
			}
		}
		if !ss.drainCtrl() || !ss.write(ss.audioMsg(pcm[off:off+n], rate, false)) {
			return false
		}
		off += n
		ss.chunks++
		genChunks++
		played += time.Duration(int64(n) * int64(time.Second) / int64(2*rate))
	}
	if ss.d == DialectFaseeh || cfg.MunsitIsFinal {
		return ss.drainCtrl() && ss.write(ss.audioMsg(nil, rate, true))
	}
	return true
}

// chunkLen is the byte length of the next chunk.
func (ss *session) chunkLen(rate int) int {
	cfg := &ss.s.cfg
	nominal := max(2, int(int64(rate)*2*int64(cfg.ChunkDuration)/int64(time.Second))&^1)
	switch cfg.Faults.Chunking {
	case ChunkFixed:
		if cfg.Faults.ChunkBytes > 0 {
			return cfg.Faults.ChunkBytes
		}
	case ChunkRandom:
		return 1 + ss.rng.IntN(2*nominal)
	case ChunkTiny:
		return 1 + ss.rng.IntN(7)
	case ChunkOdd:
		return nominal | 1
	}
	return nominal
}

// audioMsg encodes an audio message into the session's reused buffer:
// faseeh {"audio","sampleRate","isFinal"}, munsit {"audio","sampleRate"}
// (plus isFinal on the final chunk when MunsitIsFinal).
func (ss *session) audioMsg(pcm []byte, rate int, final bool) []byte {
	b := append(ss.enc[:0], `{"audio":"`...)
	b = base64.StdEncoding.AppendEncode(b, pcm)
	b = append(b, `","sampleRate":`...)
	b = strconv.AppendInt(b, int64(rate), 10)
	if ss.d == DialectFaseeh || final {
		b = append(b, `,"isFinal":`...)
		b = strconv.AppendBool(b, final)
	}
	b = append(b, '}')
	ss.enc = b
	return b
}
