package tts_test

import (
	"context"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/internal/ttstest"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// guard is the failure guard of every wait: generous, never a timing
// assertion.
const guard = ttstest.Guard

// recorder is a Handler that records everything and signals on channels.
type recorder struct {
	mu     sync.Mutex
	pcm    []byte
	rates  []int
	chunks int
	ends   int
	events []tts.Event

	endCh   chan struct{}
	eventCh chan tts.Event
	audioCh chan struct{}
}

func newRecorder() *recorder {
	return &recorder{endCh: make(chan struct{}, 100), eventCh: make(chan tts.Event, 100), audioCh: make(chan struct{}, 1)}
}

func (r *recorder) Audio(pcm []byte, rate int) {
	r.mu.Lock()
	r.pcm = append(r.pcm, pcm...)
	if len(r.rates) == 0 || r.rates[len(r.rates)-1] != rate {
		r.rates = append(r.rates, rate)
	}
	r.chunks++
	r.mu.Unlock()
	select {
	case r.audioCh <- struct{}{}:
	default:
	}
}

func (r *recorder) GenerationEnd() {
	r.mu.Lock()
	r.ends++
	r.mu.Unlock()
	r.endCh <- struct{}{}
}

func (r *recorder) Event(e tts.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.eventCh <- e
}

func (r *recorder) snapshot() (pcm []byte, rates []int, ends int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.pcm...), append([]int(nil), r.rates...), r.ends
}

func (r *recorder) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-r.endCh:
	case <-time.After(guard):
		t.Fatal("no GenerationEnd")
	}
}

func (r *recorder) waitEvent(t *testing.T, kind tts.EventKind) tts.Event {
	t.Helper()
	deadline := time.After(guard)
	for {
		select {
		case e := <-r.eventCh:
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event", kind)
		}
	}
}

func (r *recorder) waitAudio(t *testing.T) {
	t.Helper()
	select {
	case <-r.audioCh:
	case <-time.After(guard):
		t.Fatal("no audio")
	}
}

// startServer starts an embedded server on loopback for the test.
func startServer(t *testing.T, cfg ttsserver.ServerConfig) *ttsserver.RunningServer {
	t.Helper()
	if cfg.FirstChunkDelay == 0 {
		cfg.FirstChunkDelay = -1
	}
	if cfg.Pace == 0 {
		cfg.Pace = ttsserver.PaceASAP
	}
	rs, err := ttsserver.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs
}

func dial(t *testing.T, cfg tts.ClientConfig, h tts.Handler) *tts.Client {
	t.Helper()
	return ttstest.Dial(t, cfg, h)
}

func clientConfig(rs *ttsserver.RunningServer, d tts.Dialect) tts.ClientConfig {
	return ttstest.ClientConfig(rs.URL(d))
}

// handlers tracks hijacked WebSocket handlers of an httptest server, whose
// Close does not wait for them. add fails once wait has begun.
type handlers struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

func (h *handlers) add() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *handlers) done() { h.wg.Done() }

func (h *handlers) wait() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.wg.Wait()
}

// wsPeer runs a scripted WebSocket peer on loopback: serve runs once per
// connection with the upgraded conn, which is closed when serve returns. It
// returns the server's ws:// base URL (append a dialect's path). Cleanup,
// registered with t (so it runs after cleanups registered later, such as
// a client's Close), cuts the connections and waits for every serve.
func wsPeer(t *testing.T, serve func(ws *websocket.Conn)) string {
	t.Helper()
	var hd handlers
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hd.add() {
			return
		}
		defer hd.done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); hd.wait() })
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}
func f64(v float64) *float64 { return &v }
