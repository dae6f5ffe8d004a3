package ttsserver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/internal/ttstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// guard is the failure guard of every wait: generous, never a timing
// assertion.
const guard = ttstest.Guard

// recorder is a tts.Handler that records what a client delivers.
type recorder struct {
	mu      sync.Mutex
	pcm     []byte
	ends    int
	endCh   chan struct{}
	events  chan tts.Event
	audioCh chan struct{} // cap 1: audio arrived
}

func newRecorder() *recorder {
	return &recorder{endCh: make(chan struct{}, 100), events: make(chan tts.Event, 100), audioCh: make(chan struct{}, 1)}
}

func (r *recorder) Audio(pcm []byte, _ int) {
	r.mu.Lock()
	r.pcm = append(r.pcm, pcm...)
	r.mu.Unlock()
	select {
	case r.audioCh <- struct{}{}:
	default:
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

func (r *recorder) GenerationEnd() {
	r.mu.Lock()
	r.ends++
	r.mu.Unlock()
	r.endCh <- struct{}{}
}

func (r *recorder) Event(e tts.Event) {
	select {
	case r.events <- e:
	default:
	}
}

func (r *recorder) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-r.endCh:
	case <-time.After(guard):
		t.Fatal("no GenerationEnd")
	}
}

// startServer starts a server on loopback for the test: no first-chunk
// delay and as fast as possible unless cfg says otherwise.
func startServer(t *testing.T, cfg ServerConfig) *RunningServer {
	t.Helper()
	if cfg.FirstChunkDelay == 0 {
		cfg.FirstChunkDelay = -1
	}
	if cfg.Pace == 0 {
		cfg.Pace = PaceASAP
	}
	rs, err := Start(context.Background(), "127.0.0.1:0", cfg)
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

func clientConfig(rs *RunningServer, d tts.Dialect) tts.ClientConfig {
	return ttstest.ClientConfig(rs.URL(d))
}
func f64(v float64) *float64 { return &v }

// ended waits for a GenerationEnd without t.Fatal, for goroutines other
// than the test's.
func (r *recorder) ended() bool {
	select {
	case <-r.endCh:
		return true
	case <-time.After(guard):
		return false
	}
}

func (r *recorder) waitEvent(t *testing.T, kind tts.EventKind) tts.Event {
	t.Helper()
	deadline := time.After(guard)
	for {
		select {
		case e := <-r.events:
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event", kind)
		}
	}
}

// heard waits for audio without t.Fatal, for other goroutines.
func (r *recorder) heard() bool {
	select {
	case <-r.audioCh:
		return true
	case <-time.After(guard):
		return false
	}
}
