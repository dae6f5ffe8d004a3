package media

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DTMF out (RFC 4733). Digits are queued by SendDTMF from any goroutine;
// the pacer sends them on the stream's own SSRC, sequence and 20 ms grid
// instead of audio: each digit is one event of telephone-event packets,
// then its gap of silence packets. The queued audio waits meanwhile (it is
// not drained or dropped) and resumes after, with a fresh talkspurt.

// DTMF limits (the contract's).
const (
	DefaultDTMFPayloadType = 101
	DefaultDTMFDuration    = 100 * time.Millisecond
	DefaultDTMFGap         = 70 * time.Millisecond
	MinDTMFDuration        = 40 * time.Millisecond
	MaxDTMFDuration        = 2 * time.Second
	// MaxQueuedDigits bounds the digits waiting to be sent.
	MaxQueuedDigits = 64
	// dtmfVolume is the power level sent, in -dBm0 (RFC 4733 §2.3.4).
	dtmfVolume = 10
	// dtmfEnds is how many packets carry the end bit (RFC 4733 §2.5.1.4).
	dtmfEnds = 3
)

// dtmfTone is one queued digit, in frames.
type dtmfTone struct {
	event       byte // 0-15
	frames, gap int
}

// dtmfTx is the DTMF sender's state.
type dtmfTx struct {
	busy atomic.Bool // digits queued or playing: read by the pacer every frame

	mu    sync.Mutex // guards ring, head, count
	ring  [MaxQueuedDigits]dtmfTone
	head  int
	count int

	// Pacer state: only the Run goroutine touches these.
	cur      dtmfTone
	playing  bool   // cur is being sent
	i        int    // packets of cur sent
	segStart int    // packet index where the current segment began (long events)
	ts       uint32 // the current segment's timestamp
	gapLeft  int    // silence frames left after cur
	payload  [4]byte
}

// dtmfCode returns the RFC 4733 event code of a digit (0-9, *, #, A-D).
func dtmfCode(d byte) (byte, bool) {
	switch {
	case d >= '0' && d <= '9':
		return d - '0', true
	case d == '*':
		return 10, true
	case d == '#':
		return 11, true
	case d >= 'A' && d <= 'D':
		return 12 + d - 'A', true
	}
	return 0, false
}

// SendDTMF queues digits (0-9 * # A-D) to be sent in order, after any
// already queued, each lasting duration (40 ms..2 s, rounded up to 20 ms
// frames) and followed by gap of silence (40 ms..2 s; zero values: 100 ms
// and 70 ms). It returns at once: ErrInvalidDTMF, ErrDTMFQueueFull (nothing
// is queued then) or ErrClosed. Safe from any goroutine.
func (s *Stream) SendDTMF(digits string, duration, gap time.Duration) error {
	if duration == 0 {
		duration = DefaultDTMFDuration
	}
	if gap == 0 {
		gap = DefaultDTMFGap
	}
	if len(digits) == 0 {
		return fmt.Errorf("%w: no digits", ErrInvalidDTMF)
	}
	if duration < MinDTMFDuration || duration > MaxDTMFDuration {
		return fmt.Errorf("%w: duration %v not in 40ms..2s", ErrInvalidDTMF, duration)
	}
	if gap < MinDTMFDuration || gap > MaxDTMFDuration {
		return fmt.Errorf("%w: gap %v not in 40ms..2s", ErrInvalidDTMF, gap)
	}
	for i := range len(digits) {
		if _, ok := dtmfCode(digits[i]); !ok {
			return fmt.Errorf("%w: %q is not a DTMF digit (0-9 * # A-D)", ErrInvalidDTMF, digits[i])
		}
	}
	if isClosed(s.closing) {
		return ErrClosed
	}
	frames := int((duration + FrameDuration - 1) / FrameDuration)
	gapFrames := int((gap + FrameDuration - 1) / FrameDuration)
	t := &s.dtmf
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count+len(digits) > MaxQueuedDigits {
		return fmt.Errorf("%w: %d queued, %d more asked (limit %d)", ErrDTMFQueueFull, t.count, len(digits), MaxQueuedDigits)
	}
	for i := range len(digits) {
		ev, _ := dtmfCode(digits[i])
		t.ring[(t.head+t.count)%MaxQueuedDigits] = dtmfTone{event: ev, frames: frames, gap: gapFrames}
		t.count++
	}
	t.busy.Store(true)
	return nil
}

// next takes the oldest queued digit; when there is none it clears busy.
func (t *dtmfTx) next() (dtmfTone, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count == 0 {
		t.busy.Store(false)
		return dtmfTone{}, false
	}
	d := t.ring[t.head]
	t.head = (t.head + 1) % MaxQueuedDigits
	t.count--
	return d, true
}

// sendDTMFFrame sends grid slot n's packet while digits play: a
// telephone-event packet, or a silence packet of a gap. It reports false
// (the slot is the audio's) when no digit is playing or queued.
// Allocation-free.
func (s *Stream) sendDTMFFrame(n int64, perr time.Duration) bool {
	t := &s.dtmf
	slotTS := s.ts0 + uint32(n)*uint32(s.fs)
	if !t.playing && t.gapLeft == 0 {
		d, ok := t.next()
		if !ok {
			return false
		}
		t.cur, t.playing, t.i, t.segStart, t.ts = d, true, 0, 0, slotTS
	}
	p := &s.pkt
	p.Marker = false
	if t.playing {
		// Packets 0..frames-1 grow the duration by a frame each; the last
		// of them and the dtmfEnds-1 after it carry the end bit and the
		// full duration (RFC 4733 §2.5.1). Durations that would not fit in
		// 16 bits start a new segment at the current slot (§2.5.1.3).
		k := min(t.i+1, t.cur.frames)
		if (k-t.segStart)*s.fs > 0xFFFF {
			t.segStart, t.ts = t.i, slotTS
		}
		dur := (k - t.segStart) * s.fs
		end := t.i >= t.cur.frames-1
		flags := byte(dtmfVolume)
		if end {
			flags |= 0x80
		}
		t.payload[0], t.payload[1] = t.cur.event, flags
		binary.BigEndian.PutUint16(t.payload[2:], uint16(dur))
		p.Marker = t.i == 0
		p.PayloadType = s.cfg.DTMFPayloadType
		p.Timestamp = t.ts
		p.Payload = t.payload[:]
		t.i++
		if t.i == t.cur.frames-1+dtmfEnds {
			t.playing, t.gapLeft = false, t.cur.gap
			s.c.dtmfDigits.Add(1)
		}
		s.c.dtmfPackets.Add(1)
	} else {
		t.gapLeft--
		p.PayloadType = s.cfg.Codec.PayloadType()
		p.Timestamp = slotTS
		p.Payload = s.silence
		s.c.silenceFrames.Add(1)
	}
	p.SequenceNumber = s.seq
	s.seq++
	late := s.writeRTP(p, perr)
	s.lastSpch = false // the audio resumes with a new talkspurt
	if s.cfg.OnFrame != nil {
		s.cfg.OnFrame(perr, late)
	}
	return true
}
