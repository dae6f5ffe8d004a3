package media

import (
	"fmt"
	"time"
)

// DefaultDTMFEndTimeout is how long a DTMFReceiver waits after the last
// packet of a key press before it takes the press as ended with its end
// packets lost. RFC 4733 §2.5.1.2 has senders update every 50 ms or so.
const DefaultDTMFEndTimeout = 250 * time.Millisecond

// dtmfRecent is how many finished events a DTMFReceiver remembers to drop
// their retransmitted end packets.
const dtmfRecent = 16

// DTMFEvent is one key press received as RFC 4733 telephone-events.
type DTMFEvent struct {
	Digit     byte          // '0'-'9', '*', '#', 'A'-'D'
	Duration  time.Duration // from the event's duration field and the clock rate
	Timestamp uint32        // RTP timestamp: the event's start
	EndLost   bool          // no end packet came: ended by the timeout or by the next event
}

// DTMFReceiver turns RFC 4733 telephone-event packets into key presses:
// one DTMFEvent per press, when its end bit arrives, or when it is taken as
// ended (no packet for EndTimeout, or a new event started). Events are told
// apart by their RTP timestamp (the event's start, §2.3.1), not by the
// marker bit, which some gateways never set; a press already reported is
// not reported again however many end packets are retransmitted (§2.5.1.4
// sends three). Used from one goroutine; Push and Poll do not allocate.
type DTMFReceiver struct {
	clock   int
	timeout time.Duration
	emit    func(DTMFEvent)

	active bool
	cur    DTMFEvent
	segTS  uint32 // timestamp of the current segment (the event's, unless segmented)
	base   int64  // clock units of the event's earlier segments
	curDur uint16 // duration field of the current segment
	last   time.Time

	recent [dtmfRecent]uint32
	nRec   int
	pos    int
}

// NewDTMFReceiver returns a receiver for events at clockRate Hz (the
// telephone-event's rtpmap rate) that calls emit for each key press, from
// inside Push or Poll. endTimeout 0 means DefaultDTMFEndTimeout.
func NewDTMFReceiver(clockRate int, endTimeout time.Duration, emit func(DTMFEvent)) (*DTMFReceiver, error) {
	if clockRate <= 0 || emit == nil || endTimeout < 0 {
		return nil, fmt.Errorf("%w: dtmf receiver clock %d Hz", ErrInvalidConfig, clockRate)
	}
	if endTimeout == 0 {
		endTimeout = DefaultDTMFEndTimeout
	}
	return &DTMFReceiver{clock: clockRate, timeout: endTimeout, emit: emit}, nil
}

// dtmfDigits maps RFC 4733 §3.2 event codes 0-15 to their keys.
const dtmfDigits = "0123456789*#ABCD"

// ErrBadDTMF is returned by DTMFReceiver.Push for a payload that is not an
// RFC 4733 event (shorter than its 4 bytes).
var ErrBadDTMF = fmt.Errorf("%w: telephone-event payload", ErrBadPacket)

// Push handles one telephone-event packet (RFC 4733 §2.3: event, E bit,
// volume, duration) with its RTP timestamp, received at now. Events other
// than the 16 keys (flash, tones) are ignored.
func (r *DTMFReceiver) Push(ts uint32, payload []byte, now time.Time) error {
	if len(payload) < 4 {
		return ErrBadDTMF
	}
	code := payload[0]
	end := payload[1]&0x80 != 0
	dur := uint16(payload[2])<<8 | uint16(payload[3])
	if code >= uint8(len(dtmfDigits)) {
		return nil
	}
	if r.active && r.segTS == ts {
		r.update(dur, end, now)
		return nil
	}
	if r.seen(ts) {
		return nil // a retransmitted end, or a late update of a finished press
	}
	if r.active && dtmfDigits[code] == r.cur.Digit && r.curDur >= dtmfSegmentMin && ts-r.segTS == uint32(r.curDur) {
		// A key held past the 16-bit duration goes on in a new segment
		// starting where the last one ended (RFC 4733 §2.5.1.3): the same
		// press. The old segment's retransmissions are ignored from now on.
		r.remember(r.segTS)
		r.base += int64(r.curDur)
		r.segTS, r.curDur = ts, 0
		r.update(dur, end, now)
		return nil
	}
	if r.active {
		r.finish(true) // a new event began: the previous one's end was lost
	}
	r.active = true
	r.cur = DTMFEvent{Digit: dtmfDigits[code], Timestamp: ts}
	r.segTS, r.base, r.curDur = ts, 0, 0
	r.update(dur, end, now)
	return nil
}

// dtmfSegmentMin is the least duration field of a segment that a new
// segment may continue: a segment ends only when its field is (nearly)
// full.
const dtmfSegmentMin = 0xFFFF - 0xFFFF/8

// update takes a packet of the current segment.
func (r *DTMFReceiver) update(dur uint16, end bool, now time.Time) {
	r.curDur = max(dur, r.curDur)
	r.cur.Duration = r.duration(r.base + int64(r.curDur))
	r.last = now
	if end {
		r.finish(false)
	}
}

// Poll ends a press whose packets stopped EndTimeout ago. Call it at
// Deadline.
func (r *DTMFReceiver) Poll(now time.Time) {
	if r.active && now.Sub(r.last) >= r.timeout {
		r.finish(true)
	}
}

// Deadline is when Poll has work (the zero time when no press is open).
func (r *DTMFReceiver) Deadline() time.Time {
	if !r.active {
		return time.Time{}
	}
	return r.last.Add(r.timeout)
}

func (r *DTMFReceiver) duration(d int64) time.Duration {
	return time.Duration(d * int64(time.Second) / int64(r.clock))
}

func (r *DTMFReceiver) seen(ts uint32) bool {
	for i := range r.nRec {
		if r.recent[i] == ts {
			return true
		}
	}
	return false
}

func (r *DTMFReceiver) finish(endLost bool) {
	r.active = false
	r.cur.EndLost = endLost
	r.remember(r.segTS)
	r.emit(r.cur)
}

// remember adds ts to the timestamps whose packets are ignored.
func (r *DTMFReceiver) remember(ts uint32) {
	r.recent[r.pos] = ts
	r.pos = (r.pos + 1) % dtmfRecent
	r.nRec = min(r.nRec+1, dtmfRecent)
}
