package media

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// tsWriter keeps every packet's sequence number and timestamp; with delay it
// blocks in every write, like a writer stuck on a full socket.
type tsWriter struct {
	delay time.Duration
	n     atomic.Int64
	mu    sync.Mutex
	seq   []uint16
	ts    []uint32
}

func (w *tsWriter) WriteRTP(p *rtp.Packet) error {
	if w.delay > 0 {
		time.Sleep(w.delay)
	}
	w.mu.Lock()
	w.seq = append(w.seq, p.SequenceNumber)
	w.ts = append(w.ts, p.Timestamp)
	w.mu.Unlock()
	w.n.Add(1)
	return nil
}

// lateShare: at most 1 frame in lateShare may be late or skipped. Late
// means a whole frame (20 ms) behind its deadline; on this shared 2-core
// machine a stall of the whole process makes a few, a design fault makes
// most.
const lateShare = 20

func newSchedStream(t *testing.T, sc *Scheduler, w PacketWriter) *Stream {
	t.Helper()
	s, err := NewStream(StreamConfig{Writer: w}, WithScheduler(sc),
		WithEncoderFactory(func(EncoderConfig) (Encoder, error) { return &fakeEncoder{}, nil }),
		WithResamplerFactory(newFakeResampler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runStreams runs every stream's Run until the returned stop is called.
func runStreams(ss []*Stream) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() { _ = s.Run(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
		for _, s := range ss {
			_ = s.Close()
		}
	}
}

// waitFrames waits until every writer has n packets (10 s guard against a
// hang; nothing asserts on wall time).
func waitFrames(t *testing.T, ws []*tsWriter, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range ws {
		for w.n.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("a stream sent %d of %d frames", w.n.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// checkWriterGrid: consecutive sequence numbers, and timestamps that move in
// whole frames (960·k; k > 1 only where frames were skipped).
func checkWriterGrid(t *testing.T, w *tsWriter) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.seq); i++ {
		if w.seq[i] != w.seq[i-1]+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, w.seq[i], w.seq[i-1])
		}
		if d := w.ts[i] - w.ts[i-1]; d == 0 || d%FrameSamples != 0 {
			t.Fatalf("packet %d: timestamp step %d", i, d)
		}
	}
}

// Streams are spread over the phase slots: 60 streams on 20 slots is 3 a
// slot, and each keeps its own grid.
func TestSchedulerSpreadsStreamsOverSlots(t *testing.T) {
	sc := NewScheduler(2)
	var ss []*Stream
	var ws []*tsWriter
	for range 3 * Slots {
		w := &tsWriter{}
		ws = append(ws, w)
		ss = append(ss, newSchedStream(t, sc, w))
	}
	stop := runStreams(ss)
	waitFrames(t, ws, 20)
	sc.mu.Lock()
	for i, l := range sc.slots {
		if len(l) != 3 {
			t.Errorf("slot %d has %d streams, want 3", i, len(l))
		}
	}
	sc.mu.Unlock()
	for _, s := range ss {
		if d := s.sched.start.Sub(sc.epoch) % FrameDuration; d != time.Duration(s.sched.slot)*SlotDuration {
			t.Errorf("stream on slot %d starts at phase %v", s.sched.slot, d)
		}
	}
	stop()
	var sent, bad uint64
	for i, s := range ss {
		checkWriterGrid(t, ws[i])
		st := s.Stats()
		sent += st.FramesSent
		bad += st.LateFrames + st.SkippedFrames
	}
	if bad*lateShare > sent {
		t.Errorf("%d of %d frames late or skipped", bad, sent)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.count != 0 || sc.jobs != nil {
		t.Fatalf("scheduler still holds %d streams", sc.count)
	}
}

// One stream whose writer blocks 60 ms per packet (three frames) must not
// make its neighbours late: the other worker takes the ticks and the
// blocked worker's slot, and the slow stream is evicted to its own
// goroutine, where it goes on on its own grid (skipping what it cannot send).
func TestSchedulerSlowStreamDoesNotDelayOthers(t *testing.T) {
	sc := NewScheduler(2)
	slow := &tsWriter{delay: 60 * time.Millisecond}
	ws := []*tsWriter{slow}
	var ss []*Stream
	ss = append(ss, newSchedStream(t, sc, slow))
	for range 40 {
		w := &tsWriter{}
		ws = append(ws, w)
		ss = append(ss, newSchedStream(t, sc, w))
	}
	stop := runStreams(ss)
	waitFrames(t, ws[1:], 50)
	waitFrames(t, ws[:1], 5)
	stop()
	var sent, late, skipped uint64
	for i, s := range ss[1:] {
		checkWriterGrid(t, ws[i+1])
		st := s.Stats()
		sent += st.FramesSent
		late += st.LateFrames
		skipped += st.SkippedFrames
	}
	// A worker stuck behind the slow writer would make every neighbour on
	// it late on every frame; machine hiccups (other processes on 2 cores)
	// make a few late.
	if (late+skipped)*lateShare > sent {
		t.Errorf("neighbours of the slow stream: %d late, %d skipped of %d frames", late, skipped, sent)
	}
	checkWriterGrid(t, slow)
	if st := ss[0].Stats(); st.LateFrames == 0 || st.SkippedFrames == 0 {
		t.Errorf("slow stream: %d late, %d skipped; want both > 0", st.LateFrames, st.SkippedFrames)
	}
	if !isClosed(ss[0].sched.evict) {
		t.Error("slow stream was not evicted")
	}
}

func TestWithSchedulerNil(t *testing.T) {
	if _, err := NewStream(StreamConfig{Writer: &tsWriter{}}, WithScheduler(nil)); err == nil {
		t.Fatal("nil scheduler accepted")
	}
}

type nopWriter struct{ n int }

func (w *nopWriter) WriteRTP(*rtp.Packet) error { w.n++; return nil }

// A tick of the scheduler (fill the slot's job, serve its streams, one
// frame each) allocates nothing.
func TestSchedulerTickAllocatesNothing(t *testing.T) {
	clk := newFakeClock()
	sc := newScheduler(1, clk)
	w := &nopWriter{}
	for range 3 {
		s := newSchedStream(t, sc, w)
		s.sched = schedState{start: clk.Now(), evict: make(chan struct{})}
		sc.slots[0] = append(sc.slots[0], s)
		t.Cleanup(func() { _ = s.Close() })
	}
	j := &slotJob{}
	tick := func() {
		j.buf = append(j.buf[:0], sc.slots[0]...)
		j.i = 0
		sc.serveJob(j)
		clk.mu.Lock()
		clk.now = clk.now.Add(FrameDuration)
		clk.mu.Unlock()
	}
	tick()
	if a := testing.AllocsPerRun(100, tick); a != 0 {
		t.Fatalf("%v allocs per tick", a)
	}
	if want := 3 * 102; w.n != want {
		t.Fatalf("%d frames sent, want %d", w.n, want)
	}
}
