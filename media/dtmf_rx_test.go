package media

import (
	"errors"
	"testing"
	"time"
)

// te is an RFC 4733 payload.
func te(code byte, end bool, dur uint16) []byte {
	b := []byte{code, 10, byte(dur >> 8), byte(dur)}
	if end {
		b[1] |= 0x80
	}
	return b
}

type dtmfRec struct{ evs []DTMFEvent }

func (r *dtmfRec) emit(e DTMFEvent) { r.evs = append(r.evs, e) }

func newDTMF(t *testing.T) (*DTMFReceiver, *dtmfRec) {
	t.Helper()
	rec := &dtmfRec{}
	r, err := NewDTMFReceiver(48000, 0, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	return r, rec
}

func TestDTMFOnePerPressByTimestamp(t *testing.T) {
	r, rec := newDTMF(t)
	now := t0
	// "5": updates every 20 ms, then three end packets, then a straggling
	// update: one event, 160 ms.
	for i := 1; i <= 7; i++ {
		_ = r.Push(9600, te(5, false, uint16(i*960)), now)
	}
	for range 3 {
		_ = r.Push(9600, te(5, true, 7680), now)
	}
	_ = r.Push(9600, te(5, false, 6720), now)
	// "#" then "#" again: the same digit twice, told apart by timestamp.
	_ = r.Push(96000, te(11, true, 4800), now)
	_ = r.Push(96000, te(11, true, 4800), now)
	_ = r.Push(192000, te(11, false, 960), now)
	_ = r.Push(192000, te(11, true, 4800), now)
	want := []DTMFEvent{
		{Digit: '5', Duration: 160 * time.Millisecond, Timestamp: 9600},
		{Digit: '#', Duration: 100 * time.Millisecond, Timestamp: 96000},
		{Digit: '#', Duration: 100 * time.Millisecond, Timestamp: 192000},
	}
	if len(rec.evs) != len(want) {
		t.Fatalf("events %+v, want %+v", rec.evs, want)
	}
	for i := range want {
		if rec.evs[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, rec.evs[i], want[i])
		}
	}
}

func TestDTMFEndLost(t *testing.T) {
	r, rec := newDTMF(t)
	_ = r.Push(1000, te(1, false, 960), t0)
	_ = r.Push(1000, te(1, false, 1920), t0.Add(20*time.Millisecond))
	r.Poll(t0.Add(200 * time.Millisecond))
	if len(rec.evs) != 0 {
		t.Fatalf("ended early: %+v", rec.evs)
	}
	if d := r.Deadline(); !d.Equal(t0.Add(270 * time.Millisecond)) {
		t.Fatalf("deadline %v", d.Sub(t0))
	}
	r.Poll(t0.Add(270 * time.Millisecond))
	if len(rec.evs) != 1 || rec.evs[0].Digit != '1' || !rec.evs[0].EndLost || rec.evs[0].Duration != 40*time.Millisecond {
		t.Fatalf("events %+v", rec.evs)
	}
	// Its end packets arrive after all: nothing more.
	_ = r.Push(1000, te(1, true, 4800), t0.Add(300*time.Millisecond))
	// A new press whose end is lost is ended by the next press.
	_ = r.Push(50000, te(2, false, 960), t0.Add(400*time.Millisecond))
	_ = r.Push(90000, te(3, true, 960), t0.Add(420*time.Millisecond))
	got := ""
	for _, e := range rec.evs {
		got += string(e.Digit)
	}
	if got != "123" || !rec.evs[1].EndLost || rec.evs[2].EndLost {
		t.Fatalf("events %+v", rec.evs)
	}
	if !r.Deadline().IsZero() {
		t.Fatal("deadline with no open press")
	}
}

// TestDTMFLongPressSegments: a key held for 3 s at 48 kHz overflows the
// 16-bit duration twice; its segments (RFC 4733 §2.5.1.3) make one press.
func TestDTMFLongPressSegments(t *testing.T) {
	r, rec := newDTMF(t)
	ts := uint32(4294960000) // the segments' timestamps wrap around 2^32
	var total int64
	for seg, segDur := range []int{0xFFFF, 0xFFFF, 144000 - 2*0xFFFF} {
		for d := 960; d < segDur; d += 960 * 10 {
			_ = r.Push(ts, te(8, false, uint16(d)), t0)
		}
		last := seg == 2
		_ = r.Push(ts, te(8, last, uint16(segDur)), t0)
		_ = r.Push(ts, te(8, last, uint16(segDur)), t0) // retransmitted
		total += int64(segDur)
		ts += uint32(segDur)
	}
	if total != 144000 {
		t.Fatalf("script: %d clock units", total)
	}
	if len(rec.evs) != 1 || rec.evs[0].Digit != '8' || rec.evs[0].Duration != 3*time.Second || rec.evs[0].Timestamp != 4294960000 {
		t.Fatalf("events %+v, want one 3 s press of 8", rec.evs)
	}
	// A new press of the same key after a gap is a new press.
	_ = r.Push(ts+9600, te(8, true, 960), t0)
	if len(rec.evs) != 2 {
		t.Fatalf("events %+v", rec.evs)
	}
}

func TestDTMFRejects(t *testing.T) {
	r, rec := newDTMF(t)
	if err := r.Push(0, []byte{1, 2, 3}, t0); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("short payload: %v", err)
	}
	if err := r.Push(0, te(16, true, 960), t0); err != nil || len(rec.evs) != 0 { // flash: not a key
		t.Fatalf("flash: %v %+v", err, rec.evs)
	}
	if _, err := NewDTMFReceiver(0, 0, rec.emit); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("zero clock: %v", err)
	}
	all := ""
	for c := range byte(16) {
		_ = r.Push(uint32(c)*10000, te(c, true, 960), t0)
	}
	for _, e := range rec.evs {
		all += string(e.Digit)
	}
	if all != "0123456789*#ABCD" {
		t.Fatalf("digits %q", all)
	}
}

func TestDTMFAllocs(t *testing.T) {
	r, err := NewDTMFReceiver(48000, 0, func(DTMFEvent) {})
	if err != nil {
		t.Fatal(err)
	}
	p := te(5, false, 960)
	e := te(5, true, 960)
	ts := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		ts += 10000
		_ = r.Push(ts, p, t0)
		_ = r.Push(ts, e, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per press", allocs)
	}
}
