package media

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// checkGrid asserts RTP rules on every packet: sequence +1, timestamp
// ts0 + 960·slot where slot is the packet's wall-clock grid slot.
func checkGrid(t *testing.T, h *harness) {
	t.Helper()
	pkts := h.rec.packets()
	start := h.rec.at[0]
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		ts := p.Timestamp - pkts[0].Timestamp
		if ts%FrameSamples != 0 {
			t.Fatalf("packet %d: timestamp step %d not a multiple of 960", i, ts)
		}
		slot := int64(ts / FrameSamples)
		// The packet was sent at or after its slot's deadline, and before
		// the next-but-catch-up deadline.
		sent := h.rec.at[i].Sub(start)
		if sent < time.Duration(slot)*FrameDuration {
			t.Fatalf("packet %d (slot %d) sent at %v, before its deadline", i, slot, sent)
		}
		if i > 0 && p.Timestamp-pkts[i-1].Timestamp < FrameSamples {
			t.Fatalf("packet %d: timestamp did not advance", i)
		}
	}
}

func TestPacerTimestampsMarkerEvents(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	h.steps(3) // idle: silence
	// Generation 1: 5 frames at 24 kHz (fake resampler doubles samples).
	if err := h.s.Write(ctx, ramp(1, 5*FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	h.steps(8)
	// Generation 2 and 3 back to back, 2 frames each.
	for g := range 2 {
		if err := h.s.Write(ctx, ramp(100+g*5000, FrameSamples), 24000); err != nil {
			t.Fatal(err)
		}
		if err := h.s.EndGeneration(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h.steps(6)
	h.stop()

	pkts := h.rec.packets()
	checkGrid(t, h)
	for i, p := range pkts {
		if p.Marker && h.isSilence(p) {
			t.Errorf("packet %d: marker on silence", i)
		}
	}
	got := h.frameString()
	// frame 0 + 3 idle, 5 speech (marker on the first), silence, then 2+2
	// speech back to back: one talkspurt, one marker.
	want := "...." + "Mssss..." + "Msss.."
	if got != want {
		t.Fatalf("frames\n got %s\nwant %s", got, want)
	}
	for i := range len(pkts) - 1 {
		if pkts[i+1].Timestamp-pkts[i].Timestamp != FrameSamples {
			t.Fatalf("packet %d: timestamp step %d", i+1, pkts[i+1].Timestamp-pkts[i].Timestamp)
		}
	}
	ev, idx := h.eventsCopy()
	wantEv := []EventKind{EventSpeaking, EventDone, EventSpeaking, EventDone, EventSpeaking, EventDone}
	wantIdx := []int{5, 9, 13, 14, 15, 16} // packets on the wire when the event fired
	if len(ev) != len(wantEv) {
		t.Fatalf("events %v", ev)
	}
	for i := range ev {
		if ev[i].Kind != wantEv[i] || idx[i] != wantIdx[i] {
			t.Errorf("event %d: %v after %d packets, want %v after %d", i, ev[i].Kind, idx[i], wantEv[i], wantIdx[i])
		}
	}
	st := h.s.Stats()
	if st.SpeechFrames != 9 || st.Talkspurts != 2 || st.Generations != 3 || st.FramesSent != uint64(len(pkts)) || st.Underruns != 0 {
		t.Errorf("stats %+v", st)
	}
	if h.enc.resets != 2 {
		t.Errorf("encoder reset %d times, want once per talkspurt (2)", h.enc.resets)
	}
}

func TestPacerEmptyGeneration(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	if err := h.s.EndGeneration(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.steps(1)
	h.stop()
	ev, idx := h.eventsCopy()
	if len(ev) != 2 || ev[0].Kind != EventSpeaking || ev[1].Kind != EventDone || idx[0] != idx[1] {
		t.Fatalf("events %v at packets %v, want speaking and done on one frame", ev, idx)
	}
	if got := h.frameString(); got != ".." {
		t.Errorf("frames %s, want silence only", got)
	}
}

func TestPacerCatchUpAndSkip(t *testing.T) {
	var perrs []time.Duration
	var lates int
	h := newHarness(t, harnessOpt{cfg: StreamConfig{
		MaxCatchUp: 3,
		OnFrame: func(e time.Duration, late bool) {
			perrs = append(perrs, e)
			if late {
				lates++
			}
		},
	}})
	h.steps(2)                     // slots 1, 2 on time
	h.step(2*FrameDuration + 5e6)  // slot 3 woken 45 ms late: slots 3, 4, 5 at once
	h.step(0)                      // next deadline is slot 6
	h.step(10*FrameDuration + 1e6) // slot 7 woken 201 ms late: 7..17 due, catch up 3
	h.step(0)                      // slot 18
	h.stop()

	pkts := h.rec.packets()
	var slots []uint32
	for _, p := range pkts {
		slots = append(slots, (p.Timestamp-pkts[0].Timestamp)/FrameSamples)
	}
	want := []uint32{0, 1, 2, 3, 4, 5, 6, 14, 15, 16, 17, 18}
	if len(slots) != len(want) {
		t.Fatalf("slots %v, want %v", slots, want)
	}
	for i := range want {
		if slots[i] != want[i] {
			t.Fatalf("slots %v, want %v", slots, want)
		}
	}
	checkGrid(t, h)
	st := h.s.Stats()
	if st.SkippedFrames != 7 || st.LateFrames != 2+3 || lates != 5 {
		t.Errorf("stats %+v, OnFrame late %d", st, lates)
	}
	if perrs[3] != 45*time.Millisecond || perrs[4] != 25*time.Millisecond || perrs[5] != 5*time.Millisecond {
		t.Errorf("pacing errors %v", perrs)
	}
}

// TestPacerNoDrift runs 10 minutes of frames on the injected clock with
// random wake-up jitter (0-15 ms late) and checks that the stream stays on
// the absolute grid: exactly 30000 frames, the last one on slot 30000, no
// pacing error growing with time.
func TestPacerNoDrift(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	rng := rand.New(rand.NewPCG(1, 2))
	const frames = 10 * 60 * 50
	var maxErr time.Duration
	for range frames {
		j := time.Duration(rng.Int64N(int64(15 * time.Millisecond)))
		h.step(j)
	}
	h.stop()
	pkts := h.rec.packets()
	if len(pkts) != frames+1 {
		t.Fatalf("%d packets in 10 minutes, want %d", len(pkts), frames+1)
	}
	start := h.rec.at[0]
	for i := range pkts {
		e := h.rec.at[i].Sub(start) - time.Duration(i)*FrameDuration
		if e < 0 || e >= FrameDuration {
			t.Fatalf("frame %d sent %v off its deadline", i, e)
		}
		maxErr = max(maxErr, e)
		if pkts[i].Timestamp-pkts[0].Timestamp != uint32(i)*FrameSamples {
			t.Fatalf("frame %d timestamp off grid", i)
		}
	}
	if end := h.rec.at[frames].Sub(start); end < 10*time.Minute || end >= 10*time.Minute+FrameDuration {
		t.Fatalf("frame 30000 at %v", end)
	}
	st := h.s.Stats()
	if st.LateFrames != 0 || st.SkippedFrames != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("10 min: %d frames, max pacing error %v, drift 0 frames", len(pkts), maxErr)
}

func TestClearSilencesNextFrame(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	if err := h.s.Write(ctx, ramp(1, 10*FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	h.steps(3)
	h.s.Clear()
	h.steps(3)
	// A new generation after the clear plays normally with a new marker.
	if err := h.s.Write(ctx, ramp(7, FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	h.steps(2)
	h.stop()
	got := h.frameString()
	if want := ".Mss...M."; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	ev, _ := h.eventsCopy()
	kinds := []EventKind{EventSpeaking, EventSpeaking, EventDone}
	if len(ev) != 3 || ev[0].Kind != kinds[0] || ev[1].Kind != kinds[1] || ev[2].Kind != kinds[2] {
		t.Fatalf("events %v: no done for the cleared generation", ev)
	}
	if st := h.s.Stats(); st.Clears != 1 || st.Generations != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestClearUnblocksWrite(t *testing.T) {
	h := newHarness(t, harnessOpt{cfg: StreamConfig{QueueDuration: 100 * time.Millisecond}})
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- h.s.Write(ctx, ramp(1, 20*FrameSamples/2), 24000) }()
	// The writer fills 5 frames and blocks; it cannot finish without the pacer.
	for h.s.Stats().QueuedFrames < 5 {
		time.Sleep(time.Millisecond) // polling for a state, not a timing assertion
	}
	h.s.Clear()
	if err := <-errc; !errors.Is(err, ErrCleared) {
		t.Fatalf("blocked Write across Clear: %v, want ErrCleared", err)
	}
	h.steps(2)
	// EndGeneration for the cleared generation: ErrCleared, no done.
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatalf("EndGeneration after the failed Write: %v", err)
	}
	h.steps(1)
	h.stop()
	for i, p := range h.rec.packets() {
		if !h.isSilence(p) {
			t.Fatalf("packet %d is speech after Clear", i)
		}
	}
}

func TestEndGenerationAfterClear(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	if err := h.s.Write(ctx, ramp(1, FrameSamples), 24000); err != nil {
		t.Fatal(err)
	}
	h.s.Clear()
	if err := h.s.EndGeneration(ctx); !errors.Is(err, ErrCleared) {
		t.Fatalf("EndGeneration of a cleared generation: %v, want ErrCleared", err)
	}
	h.steps(3)
	h.stop()
	if ev, _ := h.eventsCopy(); len(ev) != 0 {
		t.Fatalf("events %v after a cleared generation", ev)
	}
}

// TestBackPressure: a queue of 5 frames and 40 frames written at once.
// Write blocks instead of dropping; every sample comes out, in order.
func TestBackPressure(t *testing.T) {
	h := newHarness(t, harnessOpt{cfg: StreamConfig{QueueDuration: 100 * time.Millisecond}, keep: true})
	ctx := context.Background()
	const n = 40
	errc := make(chan error, 1)
	go func() {
		err := h.s.Write(ctx, ramp(1, n*FrameSamples/2), 24000)
		if err == nil {
			err = h.s.EndGeneration(ctx)
		}
		errc <- err
	}()
	// Tick only when the writer is blocked on a full queue (or finished), so
	// that the test does not depend on goroutine scheduling.
	var werr error
	finished := false
	maxQ := 0
	h.stepUntil(100*n, func() bool {
		waitFor(t, "writer blocked or finished", func() bool {
			if !finished {
				select {
				case werr = <-errc:
					finished = true
				default:
				}
			}
			return finished || h.s.Stats().QueuedFrames == 5
		})
		maxQ = max(maxQ, h.s.Stats().QueuedFrames)
		return h.doneCount() == 1
	})
	if werr != nil {
		t.Fatal(werr)
	}
	h.stop()
	if maxQ > 5 {
		t.Errorf("queue held %d frames, bound 5", maxQ)
	}
	pcm := h.enc.pcm()
	if len(pcm) != n*FrameSamples {
		t.Fatalf("%d samples out, want %d", len(pcm), n*FrameSamples)
	}
	for i, v := range pcm {
		if want := int16(1 + i/2); v != want {
			t.Fatalf("sample %d = %d, want %d", i, v, want)
		}
	}
	if st := h.s.Stats(); st.SpeechFrames != n {
		t.Errorf("stats %+v", st)
	}
}

func TestWriteContextCancelled(t *testing.T) {
	h := newHarness(t, harnessOpt{cfg: StreamConfig{QueueDuration: 40 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.s.Write(ctx, ramp(1, 10*FrameSamples), 24000) }()
	for h.s.Stats().QueuedFrames < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v, want context.Canceled", err)
	}
	// The next generation starts on a frame boundary: 1.5 frames in, two
	// frames out (the queued 2 frames of the abandoned write play first,
	// after the pre-roll lead: its generation never ended).
	h.stepUntil(10, func() bool { return h.s.Stats().QueuedFrames == 0 })
	if err := h.s.Write(context.Background(), ramp(1, 3*FrameSamples/4), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.stepUntil(20, func() bool { return h.doneCount() == 1 })
	if st := h.s.Stats(); st.SpeechFrames != 4 {
		t.Fatalf("stats %+v, want 4 speech frames", st)
	}
}

// TestOddChunksCarried feeds a ramp in random chunk sizes, odd byte counts
// included: every sample arrives exactly once, in order, and only the last
// frame is padded.
func TestOddChunksCarried(t *testing.T) {
	for _, rate := range []int{8000, 16000, 24000} {
		h := newHarness(t, harnessOpt{keep: true})
		mult := SampleRate / rate
		const in = 3333
		data := ramp(1, in)
		rng := rand.New(rand.NewPCG(uint64(rate), 7))
		ctx := context.Background()
		errc := make(chan error, 1)
		go func() {
			for len(data) > 0 {
				k := min(len(data), 1+rng.IntN(301))
				if err := h.s.Write(ctx, data[:k], rate); err != nil {
					errc <- err
					return
				}
				data = data[k:]
			}
			errc <- h.s.EndGeneration(ctx)
		}()
		frames := (in*mult + FrameSamples - 1) / FrameSamples
		if err := <-errc; err != nil { // the queue holds it all
			t.Fatal(err)
		}
		h.stepUntil(frames+2, func() bool { return h.doneCount() == 1 })
		h.stop()
		pcm := h.enc.pcm()
		if len(pcm) != frames*FrameSamples {
			t.Fatalf("%d Hz: %d samples, want %d frames", rate, len(pcm), frames)
		}
		for i, v := range pcm {
			want := int16(0)
			if i < in*mult {
				want = int16(1 + i/mult)
			}
			if v != want {
				t.Fatalf("%d Hz: sample %d = %d, want %d", rate, i, v, want)
			}
		}
		if ev, _ := h.eventsCopy(); len(ev) != 2 || ev[1].Kind != EventDone {
			t.Fatalf("%d Hz: events %v", rate, ev)
		}
	}
}

func TestBadInput(t *testing.T) {
	if _, err := NewStream(StreamConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no writer: %v", err)
	}
	w := &recorder{}
	for _, c := range []EncoderConfig{{Complexity: 11}, {Bitrate: 100}, {Application: 9}, {PacketLossPercent: 101}} {
		if _, err := NewStream(StreamConfig{Writer: w, Encoder: c}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	for _, r := range []int{0, 44100, 48000, -1} {
		if err := h.s.Write(ctx, ramp(1, 10), r); !errors.Is(err, ErrUnsupportedRate) {
			t.Errorf("rate %d: %v", r, err)
		}
	}
	if err := h.s.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	h.stop()
	if err := h.s.Write(ctx, ramp(1, 10), 24000); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := h.s.EndGeneration(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("EndGeneration after Close: %v", err)
	}
	if err := h.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseStopsRun(t *testing.T) {
	s, err := NewStream(StreamConfig{Writer: &recorder{}},
		WithEncoderFactory(func(EncoderConfig) (Encoder, error) { return &fakeEncoder{}, nil }),
		WithResamplerFactory(newFakeResampler), WithClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	// Run may not have started yet: Close either stops it or makes it return.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestWriteErrorsCounted(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	h.rec.mu.Lock()
	h.rec.err = errors.New("boom")
	h.rec.mu.Unlock()
	h.steps(3)
	h.stop()
	// Frame 0 went out before the writer started failing.
	if st := h.s.Stats(); st.WriteErrors != 3 || st.FramesSent != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUnderrunInsideGeneration: the producer falls behind mid-sentence.
// Silence fills the gap (counted as underruns), the resumed speech carries
// the marker bit again, and the generation still gets one speaking and one
// done.
func TestUnderrunInsideGeneration(t *testing.T) {
	h := newHarness(t, harnessOpt{cfg: StreamConfig{PreRoll: -1}})
	ctx := context.Background()
	if err := h.s.Write(ctx, ramp(1, FrameSamples), 24000); err != nil { // 2 frames
		t.Fatal(err)
	}
	h.steps(4)                                                                // 2 speech, 2 silence
	if err := h.s.Write(ctx, ramp(5000, FrameSamples/2), 24000); err != nil { // 1 frame
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	h.steps(2)
	h.stop()
	got := h.frameString()
	if want := ".Ms..M."; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	ev, idx := h.eventsCopy()
	if len(ev) != 2 || ev[0].Kind != EventSpeaking || ev[1].Kind != EventDone || idx[1] != 6 {
		t.Fatalf("events %v at %v", ev, idx)
	}
	// The 2 silence frames are underruns: the generation went on after them.
	if st := h.s.Stats(); st.Underruns != 2 || st.Talkspurts != 2 || st.Generations != 1 {
		t.Errorf("stats %+v", st)
	}
}
