package media

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The track the bridge writes to satisfies PacketWriter.
var _ PacketWriter = (*webrtc.TrackLocalStaticRTP)(nil)

// fakeClock is a manual clock. The pacer arms its timer through Reset; the
// test receives each deadline on armed and fires the timer with fire.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	armed chan time.Time
	timer *fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), armed: make(chan time.Time, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timer = t
	c.mu.Unlock()
	return t
}

// waitArmed returns the deadline the pacer waits for. The 10 s guard only
// turns a hang into a failure; no test asserts on wall time.
func (c *fakeClock) waitArmed(t testing.TB) time.Time {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("pacer never armed its timer")
		return time.Time{}
	}
}

// fire sets the clock to at and fires the timer.
func (c *fakeClock) fire(at time.Time) {
	c.mu.Lock()
	c.now = at
	t := c.timer
	c.mu.Unlock()
	t.c <- at
}

type fakeTimer struct {
	clk *fakeClock
	c   chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return true }
func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clk.mu.Lock()
	at := t.clk.now.Add(d)
	t.clk.mu.Unlock()
	t.clk.armed <- at
	return true
}

// fakeEncoder writes a recognizable packet: 'S', the frame's first and last
// samples. With keep it also records every frame it encodes.
type fakeEncoder struct {
	mu      sync.Mutex
	keep    bool
	frames  [][]int16
	resets  int
	priming bool
}

func (e *fakeEncoder) Encode(pcm []int16, out []byte) (int, error) {
	if e.priming {
		e.priming = false // the zero frame primeEncoder encodes after Reset
	} else if e.keep {
		e.mu.Lock()
		e.frames = append(e.frames, append([]int16(nil), pcm...))
		e.mu.Unlock()
	}
	out[0] = 'S'
	out[1], out[2] = byte(pcm[0]), byte(uint16(pcm[0])>>8)
	out[3], out[4] = byte(pcm[FrameSamples-1]), byte(uint16(pcm[FrameSamples-1])>>8)
	return 5, nil
}
func (e *fakeEncoder) Reset() error   { e.resets++; e.priming = true; return nil }
func (e *fakeEncoder) Lookahead() int { return 0 }
func (e *fakeEncoder) Close() error   { return nil }

func (e *fakeEncoder) pcm() []int16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []int16
	for _, f := range e.frames {
		all = append(all, f...)
	}
	return all
}

// captureEncoder records the 48 kHz frames handed to a real encoder.
type captureEncoder struct {
	Encoder
	mu      sync.Mutex
	frames  [][]int16
	priming bool
}

func (e *captureEncoder) Encode(pcm []int16, out []byte) (int, error) {
	e.mu.Lock()
	if e.priming {
		e.priming = false // the zero frame primeEncoder encodes after Reset
	} else {
		e.frames = append(e.frames, append([]int16(nil), pcm...))
	}
	e.mu.Unlock()
	return e.Encoder.Encode(pcm, out)
}

func (e *captureEncoder) Reset() error {
	e.mu.Lock()
	e.priming = true
	e.mu.Unlock()
	return e.Encoder.Reset()
}

func (e *captureEncoder) pcm() []int16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []int16
	for _, f := range e.frames {
		all = append(all, f...)
	}
	return all
}

// fakeResampler repeats each input sample 48000/rate times (8k, 16k, 24k).
type fakeResampler struct {
	dst  io.Writer
	mult int
	buf  []byte
}

func newFakeResampler(dst io.Writer, rate, out int, _ ResamplerQuality) (Resampler, error) {
	return &fakeResampler{dst: dst, mult: out / rate}, nil
}

func (r *fakeResampler) Write(p []byte) (int, error) {
	if len(p)%2 != 0 {
		panic("fakeResampler: odd write")
	}
	r.buf = r.buf[:0]
	for i := 0; i < len(p); i += 2 {
		for range r.mult {
			r.buf = append(r.buf, p[i], p[i+1])
		}
	}
	return r.dst.Write(r.buf)
}
func (r *fakeResampler) Flush() error { return nil }
func (r *fakeResampler) Close() error { return nil }

// recorder is a PacketWriter keeping copies of all packets.
type recorder struct {
	mu   sync.Mutex
	pkts []rtp.Packet
	at   []time.Time
	clk  Clock
	err  error
}

func (r *recorder) WriteRTP(p *rtp.Packet) error {
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = append(r.pkts, c)
	if r.clk != nil {
		r.at = append(r.at, r.clk.Now())
	}
	return r.err
}

func (r *recorder) packets() []rtp.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rtp.Packet(nil), r.pkts...)
}

// harness runs a Stream with fake clock (and fake codecs unless real).
type harness struct {
	t       testing.TB
	s       *Stream
	clk     *fakeClock
	rec     *recorder
	enc     *fakeEncoder
	capture *captureEncoder
	cancel  context.CancelFunc
	done    chan error
	next    time.Time // deadline the pacer waits for

	evMu   sync.Mutex
	events []Event
	evIdx  []int // packet count when each event fired
}

type harnessOpt struct {
	cfg       StreamConfig
	realCodec bool
	keep      bool
}

func newHarness(t testing.TB, o harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), rec: &recorder{}, done: make(chan error, 1)}
	h.rec.clk = h.clk
	cfg := o.cfg
	cfg.Writer = h.rec
	cfg.OnEvent = func(e Event) {
		h.evMu.Lock()
		h.events = append(h.events, e)
		h.evIdx = append(h.evIdx, len(h.rec.packets()))
		h.evMu.Unlock()
	}
	opts := []Option{WithClock(h.clk)}
	if o.realCodec && o.keep {
		h.capture = &captureEncoder{}
		first := true
		opts = append(opts, WithEncoderFactory(func(c EncoderConfig) (Encoder, error) {
			e, err := NewEncoder(c)
			if err != nil || !first {
				return e, err
			}
			first = false
			h.capture.Encoder = e
			return h.capture, nil
		}))
	}
	if !o.realCodec {
		h.enc = &fakeEncoder{keep: o.keep}
		first := true
		opts = append(opts,
			WithEncoderFactory(func(EncoderConfig) (Encoder, error) {
				if first { // the stream's encoder; later ones make the silence frame
					first = false
					return h.enc, nil
				}
				return &fakeEncoder{}, nil
			}),
			WithResamplerFactory(newFakeResampler))
	}
	s, err := NewStream(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- s.Run(ctx) }()
	h.next = h.clk.waitArmed(t) // frame 0 went out at start; waiting for frame 1
	t.Cleanup(h.stop)
	return h
}

// step fires the timer late by lateness and waits until the pacer re-arms.
func (h *harness) step(lateness time.Duration) {
	h.t.Helper()
	h.clk.fire(h.next.Add(lateness))
	h.next = h.clk.waitArmed(h.t)
}

// steps fires n on-time ticks.
func (h *harness) steps(n int) {
	h.t.Helper()
	for range n {
		h.step(0)
	}
}

// stepUntil fires on-time ticks until cond holds (checked before each tick),
// at most limit ticks. The producer runs on its own goroutine and may lag
// behind the ticks; that only costs ticks, never a timing assertion.
func (h *harness) stepUntil(limit int, cond func() bool) {
	h.t.Helper()
	for range limit {
		if cond() {
			return
		}
		h.step(0)
	}
	h.t.Fatalf("condition not reached after %d frames; stats %+v", limit, h.s.Stats())
}

// waitFor polls until cond holds: waiting for another goroutine to reach a
// state (never a timing assertion; the 10 s guard turns a hang into a failure).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// doneCount counts EventDone so far.
func (h *harness) doneCount() int {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Kind == EventDone {
			n++
		}
	}
	return n
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
	_ = h.s.Close()
}

func (h *harness) eventsCopy() ([]Event, []int) {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	return append([]Event(nil), h.events...), append([]int(nil), h.evIdx...)
}

func (h *harness) isSilence(p rtp.Packet) bool { return bytes.Equal(p.Payload, h.s.silence) }

// frameString draws the packets sent: M a marked packet, s speech, . silence.
func (h *harness) frameString() string {
	var b strings.Builder
	for _, p := range h.rec.packets() {
		switch {
		case p.Marker:
			b.WriteByte('M')
		case h.isSilence(p):
			b.WriteByte('.')
		default:
			b.WriteByte('s')
		}
	}
	return b.String()
}

// ramp returns n samples 1, 2, 3, ... as PCM16LE bytes starting at from.
func ramp(from, n int) []byte {
	b := make([]byte, 0, 2*n)
	for i := range n {
		v := int16(from + i)
		b = append(b, byte(v), byte(uint16(v)>>8))
	}
	return b
}
