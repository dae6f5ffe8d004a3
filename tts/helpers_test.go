package tts

import (
	"context"
	"sync"
	"testing"
	"time"
)

// guard is the failure guard of every wait: generous, never a timing
// assertion.
const guard = 30 * time.Second

// recorder is a Handler that records everything and signals on channels.
type recorder struct {
	mu     sync.Mutex
	pcm    []byte
	rates  []int
	chunks int
	ends   int
	events []Event

	endCh   chan struct{}
	eventCh chan Event
	audioCh chan struct{}
}

func newRecorder() *recorder {
	return &recorder{endCh: make(chan struct{}, 100), eventCh: make(chan Event, 100), audioCh: make(chan struct{}, 1)}
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

func (r *recorder) Event(e Event) {
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

func (r *recorder) waitEvent(t *testing.T, kind EventKind) Event {
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

func dial(t *testing.T, cfg ClientConfig, h Handler) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := Dial(ctx, cfg, h)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func clientConfig(rs *RunningServer, d Dialect) ClientConfig {
	return ClientConfig{URL: rs.URL(d), ModelID: "faseeh-v1-preview", VoiceID: "ar-najdi-male-2"}
}
