package media

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// pkt20 is a 20 ms CELT fullband Opus packet (TOC config 31, code 0) whose
// second byte tags it.
func pkt20(tag byte) []byte { return []byte{31 << 3, tag, 0xAA} }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// drain pops every step due at now.
func drain(j *JitterBuffer, now time.Time) []JitterStep {
	var out []JitterStep
	for {
		s := j.Pop(now)
		if s.Kind == StepNone {
			return out
		}
		s.Payload = append([]byte(nil), s.Payload...)
		out = append(out, s)
	}
}

func newJB(t *testing.T, cfg JitterConfig) *JitterBuffer {
	t.Helper()
	j, err := NewJitterBuffer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func push(t *testing.T, j *JitterBuffer, seq int, ms float64) bool {
	t.Helper()
	ok, err := j.Push(uint32(1000+seq*960), pkt20(byte(seq)), 960, at(ms))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestOpusPacketSamples(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want int
		err  bool
	}{
		{[]byte{31 << 3}, 960, false},      // CELT FB 20 ms
		{[]byte{30<<3 | 1, 0}, 960, false}, // CELT FB 10 ms, two frames
		{[]byte{1 << 3}, 960, false},       // SILK NB 20 ms
		{[]byte{3 << 3}, 2880, false},      // SILK NB 60 ms
		{[]byte{16<<3 | 3, 3}, 360, false}, // CELT NB 2.5 ms x3
		{[]byte{3<<3 | 3, 3}, 0, true},     // 180 ms: over 120
		{[]byte{31<<3 | 3}, 0, true},       // code 3 without count
		{[]byte{31<<3 | 3, 0x40}, 0, true}, // zero frames
		{nil, 0, true},
	} {
		got, err := OpusPacketSamples(c.p)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("OpusPacketSamples(% x) = %d, %v; want %d, err %v", c.p, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrBadPacket) {
			t.Errorf("error %v is not ErrBadPacket", err)
		}
	}
}

func TestJitterInOrderIsImmediate(t *testing.T) {
	j := newJB(t, JitterConfig{})
	for i := range 100 {
		push(t, j, i, float64(i*20)+0.5)
		steps := drain(j, at(float64(i*20)+0.5))
		if len(steps) != 1 || steps[0].Kind != StepPacket || steps[0].Payload[1] != byte(i) || steps[0].Samples != 960 {
			t.Fatalf("packet %d: steps %+v, want the packet at once", i, steps)
		}
	}
	if st := j.Stats(); st.Concealed != 0 || st.Late != 0 || st.Received != 100 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterReorders(t *testing.T) {
	j := newJB(t, JitterConfig{})
	push(t, j, 0, 0)
	if s := drain(j, at(0)); len(s) != 1 {
		t.Fatalf("first packet: %+v", s)
	}
	push(t, j, 2, 40) // 1 is overtaken by 2
	if s := drain(j, at(40)); len(s) != 0 {
		t.Fatalf("2 played before 1 was waited for: %+v", s)
	}
	push(t, j, 1, 41)
	s := drain(j, at(41))
	if len(s) != 2 || s[0].Payload[1] != 1 || s[1].Payload[1] != 2 {
		t.Fatalf("after the late 1: %+v, want 1 then 2", s)
	}
	if st := j.Stats(); st.Concealed != 0 {
		t.Fatalf("concealed %d", st.Concealed)
	}
}

func TestJitterConcealsLossWithFEC(t *testing.T) {
	j := newJB(t, JitterConfig{MinDelay: 30 * time.Millisecond})
	push(t, j, 0, 0)
	drain(j, at(0))
	push(t, j, 2, 40)
	// 1 was due at 20 ms: it is waited for until 20+30 ms.
	if d := j.Deadline(); !d.Equal(at(50)) {
		t.Fatalf("deadline %v, want +50ms", d.Sub(t0))
	}
	if s := drain(j, at(49.9)); len(s) != 0 {
		t.Fatalf("concealed before the deadline: %+v", s)
	}
	s := drain(j, at(50))
	if len(s) != 2 || s[0].Kind != StepConceal || s[0].Samples != 960 || len(s[0].Payload) == 0 || s[0].Payload[1] != 2 ||
		s[1].Kind != StepPacket || s[1].Payload[1] != 2 {
		t.Fatalf("steps %+v, want a 20 ms concealment with packet 2 for FEC, then 2", s)
	}
	if push(t, j, 1, 60) {
		t.Fatal("packet 1 accepted after its audio was concealed")
	}
	if st := j.Stats(); st.Concealed != 1 || st.FEC != 1 || st.Late != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterKeepsTimeWhenPacketsStop(t *testing.T) {
	j := newJB(t, JitterConfig{MinDelay: 30 * time.Millisecond})
	push(t, j, 0, 0)
	var samples int
	for _, s := range drain(j, at(0)) {
		samples += s.Samples
	}
	// Nothing more arrives for a second: the timeline still advances, one
	// 20 ms concealment per 20 ms, without FEC.
	for ms := 1.0; ms <= 1029; ms++ {
		for _, s := range drain(j, at(ms)) {
			if s.Kind != StepConceal || s.Payload != nil {
				t.Fatalf("step %+v", s)
			}
			samples += s.Samples
		}
	}
	// Played: media time up to 1000 ms (the frame due at 1000 ms is concealed at 1030 ms).
	if samples != 1000*48 {
		t.Fatalf("timeline at %d samples, want %d", samples, 1000*48)
	}
	// The caller resumes on time: packet 50 (1000 ms) plays at once.
	push(t, j, 50, 1029)
	if s := drain(j, at(1029)); len(s) != 1 || s[0].Kind != StepPacket {
		t.Fatalf("resumed: %+v", s)
	}
}

func TestJitterDelayAdapts(t *testing.T) {
	j := newJB(t, JitterConfig{MinDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond})
	push(t, j, 0, 0)
	drain(j, at(0))
	push(t, j, 1, 20+45) // 45 ms late
	if d := j.Delay(); d != 55*time.Millisecond {
		t.Fatalf("delay %v after a 45 ms late packet, want 55ms", d)
	}
	push(t, j, 2, 40+500) // capped
	if d := j.Delay(); d != 100*time.Millisecond {
		t.Fatalf("delay %v, want the 100ms cap", d)
	}
	// A clean stretch shrinks it again, window by window.
	for i := 3; i < 600; i++ {
		push(t, j, i, float64(i*20))
		drain(j, at(float64(i*20)))
	}
	if d := j.Delay(); d > 25*time.Millisecond {
		t.Fatalf("delay %v after 12 clean seconds", d)
	}
}

func TestJitterFollowsSlowSenderClock(t *testing.T) {
	j := newJB(t, JitterConfig{})
	// The sender's 20 ms are 20.2 ms of ours (1% slow): over 60 s packets
	// come 600 ms later than the first one predicts.
	played := 0
	for i := range 3000 {
		ms := float64(i) * 20.2
		push(t, j, i, ms)
		for _, s := range slices.Concat(drain(j, at(ms)), drain(j, at(ms+10))) {
			if s.Kind == StepPacket {
				played++
			}
		}
	}
	if st := j.Stats(); st.Concealed > 10 || st.Late > 10 || played < 2990 {
		t.Fatalf("a 1%% slow clock cost %d concealments and %d late packets; %d of 3000 played", st.Concealed, st.Late, played)
	}
}

func TestJitterResyncsOnJump(t *testing.T) {
	j := newJB(t, JitterConfig{})
	push(t, j, 0, 0)
	drain(j, at(0))
	// A gateway restarts its timestamps 10 minutes back.
	back := uint32(48000 * 600)
	ok, err := j.Push(1000-back, pkt20(9), 960, at(20))
	if err != nil || !ok {
		t.Fatalf("push after the jump: %v %v", ok, err)
	}
	s := drain(j, at(20))
	if len(s) != 1 || s[0].Kind != StepPacket || s[0].Payload[1] != 9 {
		t.Fatalf("after the jump: %+v", s)
	}
	if j.Stats().Resyncs != 1 {
		t.Fatalf("stats %+v", j.Stats())
	}
}

func TestJitterRejects(t *testing.T) {
	if _, err := NewJitterBuffer(JitterConfig{MinDelay: time.Second, MaxDelay: time.Millisecond}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	j := newJB(t, JitterConfig{})
	if _, err := j.Push(0, nil, 960, t0); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("empty payload: %v", err)
	}
	if _, err := j.Push(0, make([]byte, 1600), 960, t0); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("oversized payload: %v", err)
	}
	for _, n := range []int{0, -960, 6000} {
		if _, err := j.Push(0, pkt20(0), n, t0); !errors.Is(err, ErrBadPacket) {
			t.Fatalf("%d samples: %v", n, err)
		}
	}
	push(t, j, 0, 0)
	if push(t, j, 0, 1) {
		t.Fatal("duplicate accepted")
	}
	if j.Pop(at(1)).Kind != StepPacket || j.Pop(at(1)).Kind != StepNone {
		t.Fatal("the duplicate was stored")
	}
}

func TestJitterAllocs(t *testing.T) {
	j := newJB(t, JitterConfig{})
	p := pkt20(1)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		now := at(float64(i * 20))
		_, _ = j.Push(uint32(i*960), p, 960, now)
		for j.Pop(now).Kind != StepNone {
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

// TestJitterG711Clock: at an 8 kHz clock (G.711, 20 ms = 160), a lost
// packet is concealed as one 160-sample step and time keeps its pace.
func TestJitterG711Clock(t *testing.T) {
	j := newJB(t, JitterConfig{ClockRate: 8000, MinDelay: 30 * time.Millisecond, NoFEC: true})
	p := make([]byte, 160)
	for _, k := range []int{0, 1, 3} {
		if _, err := j.Push(uint32(500+k*160), p, 160, at(float64(k*20))); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []StepKind
	var total int
	for _, s := range drain(j, at(40)) {
		kinds, total = append(kinds, s.Kind), total+s.Samples
	}
	if d := j.Deadline(); !d.Equal(at(70)) {
		t.Fatalf("deadline %v, want +70ms", d.Sub(t0))
	}
	for _, s := range drain(j, at(70)) {
		kinds, total = append(kinds, s.Kind), total+s.Samples
		if s.Kind == StepConceal && s.Payload != nil {
			t.Fatal("a G.711 concealment (NoFEC) offered the next packet as FEC")
		}
	}
	if st := j.Stats(); st.Concealed != 1 || st.FEC != 0 {
		t.Fatalf("stats %+v, want 1 concealment and no FEC", st)
	}
	want := []StepKind{StepPacket, StepPacket, StepConceal, StepPacket}
	if !slices.Equal(kinds, want) || total != 4*160 {
		t.Fatalf("steps %v (%d samples), want %v (640)", kinds, total, want)
	}
	if _, err := NewJitterBuffer(JitterConfig{ClockRate: 8000, Grain: 1000}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("grain over 20 ms: %v", err)
	}
}
