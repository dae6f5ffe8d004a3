package media

import (
	"context"
	"slices"
	"testing"
)

// Pre-roll, drain and generation events on the injected clock with fake
// codecs (the fake resampler doubles 24 kHz samples and holds nothing back).

func writeFrames(t *testing.T, h *harness, from, frames int) {
	t.Helper()
	if err := h.s.Write(context.Background(), ramp(from, frames*FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
}

func endGen(t *testing.T, h *harness) {
	t.Helper()
	if err := h.s.EndGeneration(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPreRollWaitsForEnoughAudio(t *testing.T) {
	h := newHarness(t, harnessOpt{}) // PreRoll 60 ms: 3 frames
	writeFrames(t, h, 1, 2)
	h.steps(3) // 2 frames queued: not enough, and well inside PreRollWait
	writeFrames(t, h, 3000, 2)
	h.steps(5)
	endGen(t, h)
	h.steps(2)
	h.stop()
	if got, want := h.frameString(), "...."+"Msss"+"..."; got != want {
		t.Fatalf("frames\n got %s\nwant %s", got, want)
	}
	// The silence after the audio is no underrun: no audio followed it.
	if st := h.s.Stats(); st.Underruns != 0 || st.PreRollWaits != 0 || st.Talkspurts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPreRollStartsAtGenerationEnd(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	writeFrames(t, h, 1, 1)
	endGen(t, h)
	h.steps(2)
	h.stop()
	if got, want := h.frameString(), ".M."; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	ev, idx := h.eventsCopy()
	if len(ev) != 2 || ev[0].Kind != EventSpeaking || ev[1].Kind != EventDone || idx[0] != 2 || idx[1] != 2 {
		t.Fatalf("events %v at %v", ev, idx)
	}
}

func TestPreRollWaitIsBounded(t *testing.T) {
	// PreRollWait 100 ms = 5 frames after the audio was first seen waiting.
	h := newHarness(t, harnessOpt{cfg: StreamConfig{PreRollWait: 100e6}})
	writeFrames(t, h, 1, 1)
	h.steps(8)
	h.stop()
	// Frame 0 went out before the Write; frame 1 sees the audio waiting.
	if got, want := h.frameString(), "......"+"M.."; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	if st := h.s.Stats(); st.PreRollWaits != 1 || st.Talkspurts != 1 {
		t.Errorf("stats %+v, want one talkspurt started by the pre-roll wait", st)
	}
}

func TestDrainPadsPartialFrame(t *testing.T) {
	h := newHarness(t, harnessOpt{keep: true, cfg: StreamConfig{PreRoll: -1}})
	// 1.5 frames, no EndGeneration: the half frame is drained (padded with
	// zeros) when the whole one leaves the queue empty.
	if err := h.s.Write(context.Background(), ramp(1, 3*FrameSamples/4), 24000); err != nil {
		t.Fatal(err)
	}
	h.steps(4)   // the whole frame, the drained one, silence
	endGen(t, h) // nothing left to queue: done at the next frame
	h.steps(2)
	h.stop()
	if got, want := h.frameString(), ".Ms...."; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	pcm := h.enc.pcm()
	if len(pcm) != 2*FrameSamples {
		t.Fatalf("%d samples encoded, want 2 frames", len(pcm))
	}
	for i := range 3 * FrameSamples / 2 {
		if want := int16(1 + i/2); pcm[i] != want {
			t.Fatalf("sample %d = %d, want %d", i, pcm[i], want)
		}
	}
	if slices.ContainsFunc(pcm[3*FrameSamples/2:], func(v int16) bool { return v != 0 }) {
		t.Fatal("padding is not zeros")
	}
	ev, idx := h.eventsCopy()
	if len(ev) != 2 || ev[1].Kind != EventDone || idx[1] != 6 {
		t.Fatalf("events %v at %v, want done at the frame after EndGeneration", ev, idx)
	}
	if st := h.s.Stats(); st.Drains != 1 || st.Generations != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDrainThenMoreAudio(t *testing.T) {
	h := newHarness(t, harnessOpt{keep: true, cfg: StreamConfig{PreRoll: -1}})
	ctx := context.Background()
	if err := h.s.Write(ctx, ramp(1, 3*FrameSamples/4), 24000); err != nil {
		t.Fatal(err)
	}
	h.steps(2) // frame 1, then the drained half frame: too late to take back
	if err := h.s.Write(ctx, ramp(5000, FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	endGen(t, h)
	h.steps(3)
	h.stop()
	pcm := h.enc.pcm()
	if len(pcm) != 3*FrameSamples {
		t.Fatalf("%d samples encoded, want 3 frames", len(pcm))
	}
	// The continuation starts on the frame after the padded one, whole.
	for i := range FrameSamples {
		if want := int16(5000 + i/2); pcm[2*FrameSamples+i] != want {
			t.Fatalf("continuation sample %d = %d, want %d", i, pcm[2*FrameSamples+i], want)
		}
	}
	if st := h.s.Stats(); st.Drains != 1 || st.Generations != 1 || st.Talkspurts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestEveryGenerationSpeaksAndEnds(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	writeFrames(t, h, 1, 2)
	endGen(t, h) // A: 2 frames
	endGen(t, h) // B: empty, right behind A
	endGen(t, h) // C: empty
	writeFrames(t, h, 9000, 1)
	endGen(t, h) // D: 1 frame
	h.steps(6)
	endGen(t, h) // E: empty, while idle
	h.steps(2)
	h.stop()
	ev, idx := h.eventsCopy()
	var got []EventKind
	for _, e := range ev {
		got = append(got, e.Kind)
	}
	want := []EventKind{EventSpeaking, EventDone, EventSpeaking, EventDone, EventSpeaking, EventDone,
		EventSpeaking, EventDone, EventSpeaking, EventDone}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v", got)
	}
	// A speaks on packet 2 and ends on 3; B and C on 3 after A's done; D on 4.
	if wantIdx := []int{2, 3, 3, 3, 3, 3, 4, 4, 8, 8}; !slices.Equal(idx, wantIdx) {
		t.Fatalf("event packets %v, want %v", idx, wantIdx)
	}
	if st := h.s.Stats(); st.Generations != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestClearRestartsPreRoll(t *testing.T) {
	h := newHarness(t, harnessOpt{cfg: StreamConfig{PreRollWait: 100e6}})
	writeFrames(t, h, 1, 1)
	h.steps(3)
	h.s.Clear()
	writeFrames(t, h, 7000, 1)
	h.steps(7)
	h.stop()
	// The wait starts again after the Clear: 5 frames from frame 4, the
	// first to see the new audio (without the restart: frame 6).
	if got, want := h.frameString(), "....."+"...."+"M."; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
}
