package media

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// dtmfPkt is a parsed telephone-event packet.
type dtmfPkt struct {
	event  byte
	end    bool
	volume byte
	dur    int
}

func parseDTMF(t *testing.T, p rtp.Packet) dtmfPkt {
	t.Helper()
	if len(p.Payload) != 4 {
		t.Fatalf("telephone-event payload of %d bytes", len(p.Payload))
	}
	return dtmfPkt{p.Payload[0], p.Payload[1]&0x80 != 0, p.Payload[1] & 0x3f, int(binary.BigEndian.Uint16(p.Payload[2:]))}
}

// TestDTMFOut: digits go out in order on the stream's sequence and grid as
// RFC 4733 events (marker on the first packet, the event's start
// timestamp, durations growing by a frame, three end packets, volume 10),
// each followed by its gap of silence; queued speech is held meanwhile and
// resumes after with a new talkspurt. Opus (48 kHz clock) and PCMU (8 kHz).
func TestDTMFOut(t *testing.T) {
	for _, c := range []Codec{CodecOpus, CodecPCMU} {
		t.Run(c.String(), func(t *testing.T) {
			h := newHarness(t, harnessOpt{realCodec: c.IsG711(), cfg: StreamConfig{Codec: c}})
			ctx := context.Background()
			fs := c.FrameSamples()
			if err := h.s.Write(ctx, ramp(1, 10*fs/2*map[bool]int{true: 2, false: 1}[c.IsG711()]), map[bool]int{true: 8000, false: 24000}[c.IsG711()]); err != nil {
				t.Fatal(err)
			}
			if err := h.s.EndGeneration(ctx); err != nil {
				t.Fatal(err)
			}
			h.steps(3) // speech starts
			if err := h.s.SendDTMF("1#", 90*time.Millisecond, 40*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := h.s.SendDTMF("D", 0, 0); err != nil { // defaults: 100 ms, 70 ms
				t.Fatal(err)
			}
			h.stepUntil(100, func() bool { return h.doneCount() == 1 })
			h.steps(1)
			h.stop()
			pkts := h.rec.packets()
			for i := 1; i < len(pkts); i++ {
				if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 || pkts[i].SSRC != pkts[0].SSRC {
					t.Fatalf("packet %d: seq %d after %d, ssrc %x", i, pkts[i].SequenceNumber, pkts[i-1].SequenceNumber, pkts[i].SSRC)
				}
			}
			type want struct {
				event       byte
				frames, gap int
			}
			wants := []want{{1, 5, 2}, {11, 5, 2}, {15, 5, 4}}
			i := 0
			for i < len(pkts) && pkts[i].PayloadType != DefaultDTMFPayloadType {
				i++
			}
			speechBefore := 0
			for _, p := range pkts[:i] {
				if !h.isSilence(p) {
					speechBefore++
				}
			}
			if speechBefore == 0 {
				t.Fatalf("no speech before the digits: %s", h.frameString())
			}
			for _, w := range wants {
				start := pkts[i]
				if !start.Marker {
					t.Fatalf("packet %d: first packet of event %d without marker", i, w.event)
				}
				slot := (start.Timestamp - pkts[0].Timestamp) / uint32(fs)
				if (start.Timestamp-pkts[0].Timestamp)%uint32(fs) != 0 || int(slot) != i {
					t.Fatalf("event %d: timestamp off the grid (slot %d, packet %d)", w.event, slot, i)
				}
				for j := range w.frames + 2 {
					p := pkts[i+j]
					if p.PayloadType != DefaultDTMFPayloadType || p.Timestamp != start.Timestamp || (j > 0 && p.Marker) {
						t.Fatalf("event %d packet %d: pt %d ts %d marker %v", w.event, j, p.PayloadType, p.Timestamp, p.Marker)
					}
					d := parseDTMF(t, p)
					wantDur := min(j+1, w.frames) * fs
					if d.event != w.event || d.volume != dtmfVolume || d.dur != wantDur || d.end != (j >= w.frames-1) {
						t.Fatalf("event %d packet %d: %+v, want duration %d end %v", w.event, j, d, wantDur, j >= w.frames-1)
					}
				}
				i += w.frames + 2
				for j := range w.gap {
					if p := pkts[i+j]; p.PayloadType == DefaultDTMFPayloadType || !h.isSilence(p) {
						t.Fatalf("gap after event %d, frame %d: not silence", w.event, j)
					}
				}
				i += w.gap
			}
			if !pkts[i].Marker || h.isSilence(pkts[i]) {
				t.Fatalf("packet %d after the digits: marker %v silence %v; speech should resume", i, pkts[i].Marker, h.isSilence(pkts[i]))
			}
			if st := h.s.Stats(); st.DTMFDigits != 3 || st.DTMFPackets != 21 {
				t.Fatalf("stats: %d digits, %d packets", st.DTMFDigits, st.DTMFPackets)
			}
		})
	}
}

// TestDTMFLongEvent: a 2 s digit at 48 kHz does not fit the 16-bit
// duration: it is cut into segments, each with a new timestamp and
// durations that never wrap.
func TestDTMFLongEvent(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	if err := h.s.SendDTMF("5", 2*time.Second, 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	h.steps(110)
	h.stop()
	var ev []rtp.Packet
	for _, p := range h.rec.packets() {
		if p.PayloadType == DefaultDTMFPayloadType {
			ev = append(ev, p)
		}
	}
	if len(ev) != 102 {
		t.Fatalf("%d event packets, want 102", len(ev))
	}
	segs, prev := 1, 0
	for i, p := range ev {
		d := parseDTMF(t, p)
		if i > 0 && p.Timestamp != ev[i-1].Timestamp {
			segs++
			if d.dur != FrameSamples {
				t.Fatalf("packet %d: new segment starts with duration %d", i, d.dur)
			}
		} else if i > 0 && d.dur < prev {
			t.Fatalf("packet %d: duration %d after %d", i, d.dur, prev)
		}
		prev = d.dur
	}
	if segs != 2 {
		t.Fatalf("%d segments, want 2", segs)
	}
}

func TestDTMFBadInput(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, c := range []struct {
		digits   string
		dur, gap time.Duration
	}{{"", 0, 0}, {"1x", 0, 0}, {"a", 0, 0}, {"1", 30 * time.Millisecond, 0}, {"1", 2001 * time.Millisecond, 0}, {"1", 0, 39 * time.Millisecond}, {"1", 0, 3 * time.Second}} {
		if err := h.s.SendDTMF(c.digits, c.dur, c.gap); !errors.Is(err, ErrInvalidDTMF) {
			t.Errorf("SendDTMF(%q, %v, %v): %v", c.digits, c.dur, c.gap, err)
		}
	}
	long := make([]byte, MaxQueuedDigits+1)
	for i := range long {
		long[i] = '1'
	}
	if err := h.s.SendDTMF(string(long), 0, 0); !errors.Is(err, ErrDTMFQueueFull) {
		t.Errorf("too many digits: %v", err)
	}
	if _, err := NewStream(StreamConfig{Writer: h.rec, DTMFPayloadType: 111}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("DTMF payload type equal to opus's: %v", err)
	}
	h.stop()
	if err := h.s.SendDTMF("1", 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
