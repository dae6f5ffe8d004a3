package media

import (
	"context"
	"fmt"
	"testing"
)

// evString draws events: S speaking, D done, m<name> mark, c<name> cleared mark,
// each with the packet count when it fired.
func evString(ev []Event, idx []int) string {
	s := ""
	for i, e := range ev {
		switch e.Kind {
		case EventSpeaking:
			s += fmt.Sprintf("S@%d ", idx[i])
		case EventDone:
			s += fmt.Sprintf("D@%d ", idx[i])
		case EventMark:
			if e.Cleared {
				s += fmt.Sprintf("c%s@%d ", e.Mark, idx[i])
			} else {
				s += fmt.Sprintf("m%s@%d ", e.Mark, idx[i])
			}
		}
	}
	return s
}

// TestMarkAfterLastFrame: a mark comes right after the last frame queued
// before it went on the wire, after the generation's done, in order; a
// mark with nothing queued comes at the next frame.
func TestMarkAfterLastFrame(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	if err := h.s.Mark(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	h.steps(1) // packets: 0 at start, 1 now; the mark fires after packet 1
	if err := h.s.Write(ctx, ramp(1, 3*FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if err := h.s.Mark(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.s.Write(ctx, ramp(1, FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Mark(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	h.steps(6)
	h.stop()
	ev, idx := h.eventsCopy()
	// Packets 2,3,4: generation 1; 5: generation 2.
	if got, want := evString(ev, idx), "midle@2 S@3 D@5 ma@5 mb@5 S@6 D@6 mc@6 "; got != want {
		t.Fatalf("events %q, want %q (frames %s)", got, want, h.frameString())
	}
	if st := h.s.Stats(); st.Marks != 4 {
		t.Errorf("Marks = %d, want 4", st.Marks)
	}
}

// TestMarkCleared: marks behind audio a Clear dropped come back cleared, at
// the first frame after the Clear, in order, before later marks.
func TestMarkCleared(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	if err := h.s.Write(ctx, ramp(1, 10*FrameSamples/2), 24000); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if err := h.s.Mark(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	h.steps(3)
	h.s.Clear()
	if err := h.s.Mark(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	h.steps(2)
	h.stop()
	ev, idx := h.eventsCopy()
	if got, want := evString(ev, idx), "S@2 ca@5 cb@5 mc@5 "; got != want {
		t.Fatalf("events %q, want %q (frames %s)", got, want, h.frameString())
	}
}

// TestMarkWaitsForRoom: with the ring of ends and marks full, Mark blocks
// until the pacer takes one, and a cancelled context ends the wait.
func TestMarkWaitsForRoom(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	ctx := context.Background()
	for i := range maxPendingEnds {
		if err := h.s.Mark(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.s.Mark(cctx, "late"); err != context.Canceled {
		t.Fatalf("Mark on a full ring with a cancelled context: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.s.Mark(ctx, "next") }()
	h.stepUntil(20, func() bool {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			return true
		default:
			return false
		}
	})
	h.steps(1)
	h.stop()
	all, _ := h.eventsCopy()
	var ev []Event
	for _, e := range all {
		if e.Kind == EventMark {
			ev = append(ev, e)
		}
	}
	if len(ev) != maxPendingEnds+1 || ev[len(ev)-1].Mark != "next" {
		t.Fatalf("%d events, last %+v", len(ev), ev[len(ev)-1])
	}
	for i := range maxPendingEnds {
		if ev[i].Mark != fmt.Sprint(i) {
			t.Fatalf("event %d: %+v", i, ev[i])
		}
	}
}
