package media

import (
	"fmt"
	"time"
)

// Jitter buffer defaults (JitterConfig's zero values).
const (
	defaultJitterMinDelay = 30 * time.Millisecond
	defaultJitterMaxDelay = 200 * time.Millisecond
	defaultJitterCapacity = 64
	// jitterMargin is added to the worst lateness seen when sizing the delay.
	jitterMargin = 10 * time.Millisecond
	// jitterWindow is the span of media time over which the lateness
	// statistics are gathered.
	jitterWindow = 2 * time.Second
	// jitterMaxJump is the largest timestamp jump taken as part of the
	// stream; beyond it the stream is resynchronized.
	jitterMaxJump = time.Second
	// maxRTPPayload is the largest payload the buffer stores (an MTU).
	maxRTPPayload = 1500
)

// JitterConfig sizes a JitterBuffer. The zero value works.
type JitterConfig struct {
	// MinDelay is the least time a missing packet is waited for, after the
	// moment it was due, before it is concealed. If zero, 30 ms.
	MinDelay time.Duration
	// MaxDelay caps the adaptive delay. If zero, 200 ms.
	MaxDelay time.Duration
	// Capacity is the number of packets held. If zero, 64.
	Capacity int
	// ClockRate is the RTP clock in Hz. If zero, 48000 (Opus, RFC 7587
	// §4.1); 8000 for G.711.
	ClockRate int
	// Grain is the smallest piece concealment produces, in clock units: a
	// concealment of a gap shorter than 20 ms is rounded down to it. If
	// zero, 2.5 ms (the smallest Opus frame).
	Grain int
	// NoFEC says the codec carries no in-band FEC (G.711): a concealment
	// step never offers the next packet, and Stats counts no FEC.
	NoFEC bool
}

// StepKind says what a JitterStep asks the decoder to do.
type StepKind int

// Step kinds.
const (
	StepNone    StepKind = iota // nothing is due yet: wait until Deadline
	StepPacket                  // decode Payload
	StepConceal                 // conceal Samples of audio (FEC from Payload when it is not nil)
)

// JitterStep is one piece of the caller's audio in playout order.
type JitterStep struct {
	Kind StepKind
	// Payload is the packet to decode (StepPacket), or for StepConceal the
	// packet right after the gap, whose in-band FEC may recover it (nil when
	// that packet has not arrived). It is valid until the next Push or Pop.
	Payload []byte
	// Samples is the duration the step covers, in clock units (48 kHz
	// samples for Opus).
	Samples int
	// Arrival is when the packet arrived (StepPacket only).
	Arrival time.Time
}

// JitterStats are a JitterBuffer's counters since it was made.
type JitterStats struct {
	Received  uint64 // packets accepted into the buffer
	Late      uint64 // packets dropped: they came after their audio was concealed (or were duplicates)
	Dropped   uint64 // packets dropped: the buffer was full, or a resync discarded them
	Concealed uint64 // concealment steps (≤ 20 ms each): audio missing at its playout time
	FEC       uint64 // of Concealed, those offered the next packet's in-band FEC
	Resyncs   uint64 // timestamp jumps that restarted the timeline
}

// JitterBuffer puts the caller's RTP packets back in timestamp order and
// decides, for each piece of the timeline, whether to decode a packet or
// conceal a gap, so that the audio handed on is continuous in time from the
// first packet. It reorders and never adds delay to packets that arrive in
// order: a packet is played as soon as everything before it is. A missing
// packet is waited for until Delay after it was due (its timestamp mapped to
// wall time through the earliest arrival seen), then concealed; the delay
// adapts to the worst lateness seen in the last 2 s (plus 10 ms), between
// MinDelay and MaxDelay. A slow sender clock is followed by moving the
// mapping later when a whole window arrived late.
//
// Timestamps are RTP timestamps at ClockRate; a packet's duration is given
// to Push (OpusPacketSamples for Opus). It is used from one goroutine; Push
// and Pop do not allocate.
type JitterBuffer struct {
	cfg   JitterConfig
	slots []jitterSlot
	order []int // indexes into slots of the held packets, by ext ascending
	free  []int

	started bool
	lastTS  uint32 // timestamp of the highest packet seen
	lastExt int64  // its extended timestamp
	next    int64  // extended timestamp of the next sample to play
	base    time.Time
	delay   time.Duration

	winEnd     int64
	winMinLate time.Duration
	winMaxLate time.Duration
	winSeen    bool

	stats JitterStats

	// In clock units:
	window, maxJump, step, grain int64
}

type jitterSlot struct {
	ext     int64
	samples int
	arrival time.Time
	n       int
	buf     [maxRTPPayload]byte
}

// NewJitterBuffer returns an empty buffer. It errors for a negative or
// inconsistent config (ErrInvalidConfig).
func NewJitterBuffer(cfg JitterConfig) (*JitterBuffer, error) {
	if cfg.MinDelay == 0 {
		cfg.MinDelay = defaultJitterMinDelay
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = defaultJitterMaxDelay
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = defaultJitterCapacity
	}
	if cfg.ClockRate == 0 {
		cfg.ClockRate = SampleRate
	}
	if cfg.Grain == 0 {
		cfg.Grain = cfg.ClockRate / 400
	}
	if cfg.MinDelay < 0 || cfg.MaxDelay < cfg.MinDelay || cfg.Capacity < 2 || cfg.ClockRate < 400 || cfg.Grain < 1 || cfg.Grain > cfg.ClockRate/50 {
		return nil, fmt.Errorf("%w: jitter buffer delay %v..%v, capacity %d, clock %d Hz, grain %d",
			ErrInvalidConfig, cfg.MinDelay, cfg.MaxDelay, cfg.Capacity, cfg.ClockRate, cfg.Grain)
	}
	clock := int64(cfg.ClockRate)
	j := &JitterBuffer{
		cfg:   cfg,
		slots: make([]jitterSlot, cfg.Capacity),
		order: make([]int, 0, cfg.Capacity),
		free:  make([]int, cfg.Capacity),
		delay: cfg.MinDelay,

		window:  clock * int64(jitterWindow/time.Millisecond) / 1000,
		maxJump: clock * int64(jitterMaxJump/time.Millisecond) / 1000,
		step:    clock / 50,
		grain:   int64(cfg.Grain),
	}
	for i := range j.free {
		j.free[i] = i
	}
	return j, nil
}

// samplesDur converts clock units to a duration.
func (j *JitterBuffer) samplesDur(n int64) time.Duration {
	return time.Duration(n * int64(time.Second) / int64(j.cfg.ClockRate))
}

// Push stores a copy of a packet with RTP timestamp ts, lasting samples
// clock units, that arrived at arrival. It reports whether the packet was
// kept: a late or duplicate packet is dropped and counted; an empty or
// oversized one, or a duration out of 1..120 ms, returns ErrBadPacket.
func (j *JitterBuffer) Push(ts uint32, payload []byte, samples int, arrival time.Time) (bool, error) {
	if samples <= 0 || samples > 6*j.cfg.ClockRate/50 || len(payload) == 0 || len(payload) > maxRTPPayload {
		return false, fmt.Errorf("%w: %d bytes", ErrBadPacket, len(payload))
	}
	var ext int64
	if !j.started {
		j.started = true
		j.lastTS, j.lastExt = ts, 0
		j.restart(0, arrival)
	} else {
		ext = j.lastExt + int64(int32(ts-j.lastTS))
		if ext > j.lastExt {
			j.lastTS, j.lastExt = ts, ext
		}
		if ext < j.next-j.maxJump || ext > j.next+j.maxJump+int64(j.delay/time.Millisecond)*int64(j.cfg.ClockRate)/1000 {
			// The sender's timeline jumped (a restart, a gateway that froze
			// its timestamps over silence): start again from here, without
			// concealing the jump.
			j.stats.Resyncs++
			j.stats.Dropped += uint64(len(j.order))
			j.free = append(j.free, j.order...)
			j.order = j.order[:0]
			j.lastTS, j.lastExt = ts, ext
			j.restart(ext, arrival)
		}
	}
	if ext < j.next {
		j.stats.Late++
		return false, nil
	}
	pos := len(j.order)
	for pos > 0 && j.slots[j.order[pos-1]].ext >= ext {
		if j.slots[j.order[pos-1]].ext == ext {
			j.stats.Late++ // duplicate
			return false, nil
		}
		pos--
	}
	if len(j.free) == 0 {
		j.stats.Dropped++
		return false, nil
	}
	j.observe(ext, arrival)

	i := j.free[len(j.free)-1]
	j.free = j.free[:len(j.free)-1]
	s := &j.slots[i]
	s.ext, s.samples, s.arrival = ext, samples, arrival
	s.n = copy(s.buf[:], payload)
	j.order = j.order[:len(j.order)+1]
	copy(j.order[pos+1:], j.order[pos:])
	j.order[pos] = i
	j.stats.Received++
	return true, nil
}

// restart maps ext to arrival and plays from ext on.
func (j *JitterBuffer) restart(ext int64, arrival time.Time) {
	j.next = ext
	j.base = arrival.Add(-j.samplesDur(ext))
	j.winEnd = ext + j.window
	j.winSeen = false
}

// observe updates the wall-time mapping and the delay with a packet's
// lateness.
func (j *JitterBuffer) observe(ext int64, arrival time.Time) {
	late := arrival.Sub(j.base) - j.samplesDur(ext)
	if late < 0 {
		// Earlier than any packet so far: the mapping moves earlier.
		j.base = j.base.Add(late)
		j.winMinLate -= late
		j.winMaxLate -= late
		late = 0
	}
	if !j.winSeen || late < j.winMinLate {
		j.winMinLate = late
	}
	if !j.winSeen || late > j.winMaxLate {
		j.winMaxLate = late
	}
	j.winSeen = true
	if d := min(late+jitterMargin, j.cfg.MaxDelay); d > j.delay {
		j.delay = d // grow at once
	}
	if ext < j.winEnd {
		return
	}
	// End of a window: every packet in it was at least winMinLate late, so
	// the sender's clock runs slow against ours (or the path got longer);
	// follow it. The delay shrinks halfway toward what the window needed.
	if j.winMinLate > 0 {
		j.base = j.base.Add(j.winMinLate)
		j.winMaxLate -= j.winMinLate
	}
	target := min(max(j.winMaxLate+jitterMargin, j.cfg.MinDelay), j.cfg.MaxDelay)
	if target < j.delay {
		j.delay = (j.delay + target) / 2
	}
	j.winEnd = ext + j.window
	j.winSeen = false
}

// Pop returns the next step of the timeline due at now, or a StepNone step
// when the next packet is missing and still waited for (until Deadline).
// Call it until it returns StepNone after every Push and at every Deadline.
func (j *JitterBuffer) Pop(now time.Time) JitterStep {
	if !j.started {
		return JitterStep{}
	}
	for len(j.order) > 0 {
		s := &j.slots[j.order[0]]
		if s.ext > j.next {
			break
		}
		j.release()
		if s.ext < j.next {
			j.stats.Late++ // overlaps audio already played
			continue
		}
		j.next += int64(s.samples)
		return JitterStep{Kind: StepPacket, Payload: s.buf[:s.n], Samples: s.samples, Arrival: s.arrival}
	}
	if now.Before(j.Deadline()) {
		return JitterStep{}
	}
	n := j.step
	var fec []byte
	if len(j.order) > 0 {
		s := &j.slots[j.order[0]]
		gap := s.ext - j.next
		if gap < j.grain {
			// Less than the smallest frame is missing (a sender whose
			// timestamps do not line up): skip it.
			j.next = s.ext
			return j.Pop(now)
		}
		if gap <= n {
			n = gap - gap%j.grain
			if n == gap && !j.cfg.NoFEC {
				fec = s.buf[:s.n]
			}
		}
	}
	j.next += n
	j.stats.Concealed++
	if fec != nil {
		j.stats.FEC++
	}
	return JitterStep{Kind: StepConceal, Payload: fec, Samples: int(n)}
}

// release frees the head slot.
func (j *JitterBuffer) release() {
	j.free = append(j.free, j.order[0])
	copy(j.order, j.order[1:])
	j.order = j.order[:len(j.order)-1]
}

// Deadline is when the next piece of the timeline is concealed if its
// packet has not arrived: when it was due plus the current delay. It is the
// zero time before the first packet.
func (j *JitterBuffer) Deadline() time.Time {
	if !j.started {
		return time.Time{}
	}
	return j.base.Add(j.samplesDur(j.next) + j.delay)
}

// Delay is the current adaptive delay.
func (j *JitterBuffer) Delay() time.Duration { return j.delay }

// Len is the number of packets held.
func (j *JitterBuffer) Len() int { return len(j.order) }

// Stats returns the counters.
func (j *JitterBuffer) Stats() JitterStats { return j.stats }
