//go:build cgo

package media

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// TestDrainResumeSeamless: a drain in the middle of a generation, followed
// by more audio before the pacer reached the padded frame, leaves the 48 kHz
// signal handed to the encoder as it would have been without the drain (up
// to the pre-ringing of the continuation over samples already final), at
// every rate and wherever the cut falls in a frame. (A cut right at a word
// boundary, where the tone changes abruptly, shows the continuation's
// pre-ringing missing from final samples: up to 0.045·A at 8 kHz.)
func TestDrainResumeSeamless(t *testing.T) {
	for _, rate := range []int{8000, 16000, 22050, 24000} {
		for _, cutMs := range []int{37, 143, 173} {
			t.Run(fmt.Sprintf("%d/%dms", rate, cutMs), func(t *testing.T) {
				data := utterance(rate, words[:4])
				cut := rate * cutMs / 1000 * 2
				ref := playDrained(t, rate, data, -1)
				got := playDrained(t, rate, data, cut)
				if len(got) != len(ref) {
					t.Fatalf("%d samples, want %d", len(got), len(ref))
				}
				worst, at := 0.0, 0
				for i := range ref {
					if d := math.Abs(float64(got[i]) - float64(ref[i])); d > worst {
						worst, at = d, i
					}
				}
				cut48 := cut / 2 * SampleRate / rate
				t.Logf("max difference %.4f·A at %+d samples from the cut", worst/wordAmp, at-cut48)
				if worst > 0.005*wordAmp {
					t.Fatalf("max difference %.0f (%.3f·A) at sample %d (cut at %d)", worst, worst/wordAmp, at, cut48)
				}
			})
		}
	}
}

// playDrained plays data as one generation; with cut >= 0 it drains the
// producer after data[:cut] as the pacer does when the queue runs dry.
func playDrained(t *testing.T, rate int, data []byte, cut int) []int16 {
	h := newHarness(t, harnessOpt{realCodec: true, keep: true, cfg: StreamConfig{PreRoll: -1}})
	ctx := context.Background()
	if cut >= 0 {
		if err := h.s.Write(ctx, data[:cut], rate); err != nil {
			t.Fatal(err)
		}
		h.s.drain() // the pacer is parked on the fake clock
		if h.s.Stats().Drains != 1 {
			t.Fatal("nothing drained")
		}
		data = data[cut:]
	}
	if err := h.s.Write(ctx, data, rate); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	h.stepUntil(1000, func() bool { return h.doneCount() == 1 })
	h.stop()
	if cut >= 0 && h.s.Stats().Resumes != 1 {
		t.Fatalf("stats %+v: the padding was not taken back", h.s.Stats())
	}
	return h.capture.pcm()
}

// TestDrainThenRateChange: a drain, then audio at another rate (a rate
// change right after the drained end): the result matches the same rate
// change without the drain.
func TestDrainThenRateChange(t *testing.T) {
	a := utterance(24000, words[:2])
	b := utterance(16000, words[2:4])
	play := func(drain bool) []int16 {
		h := newHarness(t, harnessOpt{realCodec: true, keep: true, cfg: StreamConfig{PreRoll: -1}})
		ctx := context.Background()
		if err := h.s.Write(ctx, a, 24000); err != nil {
			t.Fatal(err)
		}
		if drain {
			h.s.drain()
		}
		if err := h.s.Write(ctx, b, 16000); err != nil {
			t.Fatal(err)
		}
		if err := h.s.EndGeneration(ctx); err != nil {
			t.Fatal(err)
		}
		h.stepUntil(1000, func() bool { return h.doneCount() == 1 })
		h.stop()
		if st := h.s.Stats(); drain && (st.Drains != 1 || st.Resumes != 1) {
			t.Fatalf("stats %+v, want one drain taken back", st)
		}
		return h.capture.pcm()
	}
	ref, got := play(false), play(true)
	if len(got) != len(ref) {
		t.Fatalf("%d samples, want %d", len(got), len(ref))
	}
	// The 20 ms before the change hold the new segment's pre-ringing; with
	// the drain, the part over frames already final is missing (as for a
	// same-rate cut at an abrupt change, see TestDrainResumeSeamless).
	cut := len(a) / 2 * SampleRate / 24000
	pre := SampleRate * overlapMs / 1000
	worst, worstPre := 0.0, 0.0
	for i := range ref {
		d := math.Abs(float64(got[i]) - float64(ref[i]))
		if i >= cut-pre && i < cut {
			worstPre = max(worstPre, d)
		} else {
			worst = max(worst, d)
		}
	}
	t.Logf("max difference %.4f·A (%.4f·A in the 20 ms before the change)", worst/wordAmp, worstPre/wordAmp)
	if worst > 0.005*wordAmp || worstPre > 0.05*wordAmp {
		t.Fatalf("max difference %.3f·A, %.3f·A before the change", worst/wordAmp, worstPre/wordAmp)
	}
}
