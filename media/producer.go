package media

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
)

// Feed sizes for the resampler. zaf/resample copies through C memory on
// every Write, so small TTS chunks are gathered to at least minFeedMs; big
// ones are cut at maxFeedMs so that the pending output stays bounded.
const (
	minFeedMs = 20
	maxFeedMs = 100
	// overlapMs is the overlap-add window at a mid-stream rate change: the
	// old segment is flushed with this much zero input appended (its
	// filter's ring-down) and the new one is started with this much zero
	// input prepended (its pre-ringing), and the two are summed, so that the
	// resampled signal is continuous across the change. 20 ms is the
	// shortest duration that is a whole number of samples at every rate.
	overlapMs = 20
)

// producer is the Write side of a Stream: odd-byte carry, input staging,
// the resampler segment and its pending 48 kHz output. Guarded by
// Stream.prodMu.
type producer struct {
	s       *Stream
	epoch   uint64 // queue epoch this state belongs to
	rate    int    // input rate of res
	res     Resampler
	stage   []byte // whole input samples waiting to be fed (< minFeed)
	carry   byte   // first byte of a sample split across Writes
	hasOdd  bool
	genOpen bool // audio was written since the last EndGeneration
	genOut  int  // 48 kHz samples pushed in this generation
	zeros   []byte

	// pending is the resampler output not yet pushed to the queue. The
	// current segment's output sample k lands at pending[segBase+k]: added
	// to what is there (overlap after a rate change) or appended.
	pending []int16
	segBase int
	segIn   int // input samples fed in this segment (zeros included)
	segOut  int // output samples produced in this segment
}

func (p *producer) init(s *Stream) {
	p.s = s
	p.epoch = s.q.currentEpoch()
	p.stage = make([]byte, 0, 24000*minFeedMs/1000*2)
	p.zeros = make([]byte, 24000*overlapMs/1000*2)
	p.pending = make([]int16, 0, SampleRate)
}

// Write implements the resampler's destination (sink).
func (p *producer) sinkWrite(b []byte) {
	n := len(b) / 2
	if p.segBase+p.segOut == len(p.pending) {
		// Common case, nothing to overlap: append, decoding in one pass.
		old := len(p.pending)
		p.pending = slices.Grow(p.pending, n)[:old+n]
		dst := p.pending[old:]
		for i := range dst {
			dst[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		p.segOut += n
		return
	}
	for i := 0; i+1 < len(b); i += 2 {
		v := int16(uint16(b[i]) | uint16(b[i+1])<<8)
		pos := p.segBase + p.segOut
		p.segOut++
		switch {
		case pos < 0: // pre-ringing before audio already pushed: dropped
		case pos < len(p.pending):
			p.pending[pos] = sat16(int32(p.pending[pos]) + int32(v))
		default:
			p.pending = append(p.pending, v)
		}
	}
}

// sink adapts producer to io.Writer for the resampler.
type sink struct{ p *producer }

func (k *sink) Write(b []byte) (int, error) { k.p.sinkWrite(b); return len(b), nil }

func sat16(v int32) int16 {
	return int16(max(-32768, min(32767, v)))
}

// drop forgets everything not yet queued: after Clear, ctx cancellation or
// Close. The resampler is freed; the next Write makes a new one. The
// queue's unfinished frame goes too, so that the next generation starts on
// a frame boundary.
func (p *producer) drop() {
	p.s.q.dropPartial(p.epoch)
	if p.res != nil {
		_ = p.res.Close()
		p.res = nil
	}
	p.stage = p.stage[:0]
	p.hasOdd = false
	p.genOpen = false
	p.genOut = 0
	p.pending = p.pending[:0]
	p.segBase, p.segIn, p.segOut = 0, 0, 0
}

func (p *producer) close() { p.drop() }

// sync drops state left over from before a Clear. It reports whether a
// generation was in progress when the Clear ran.
func (p *producer) sync() bool {
	e := p.s.q.currentEpoch()
	if e == p.epoch {
		return false
	}
	was := p.genOpen
	p.drop()
	p.epoch = e
	return was
}

// newSegment starts a resampler segment at rate whose output begins at
// pending[base].
func (p *producer) newSegment(rate, base int) error {
	if p.res == nil || p.rate != rate {
		if p.res != nil {
			_ = p.res.Close()
			p.res = nil
		}
		r, err := p.s.newResampler(&sink{p}, rate, p.s.cfg.Resampler)
		if err != nil {
			return err
		}
		p.res, p.rate = r, rate
	}
	p.segBase, p.segIn, p.segOut = base, 0, 0
	return nil
}

// feed resamples whole samples b into pending.
func (p *producer) feed(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := p.res.Write(b); err != nil {
		return fmt.Errorf("media: resample: %w", err)
	}
	p.segIn += len(b) / 2
	return nil
}

// flushSegment feeds what is staged and flushes the resampler's tail.
func (p *producer) flushSegment() error {
	if p.res == nil {
		return nil
	}
	if err := p.feed(p.stage); err != nil {
		return err
	}
	p.stage = p.stage[:0]
	if err := p.res.Flush(); err != nil {
		return fmt.Errorf("media: resample flush: %w", err)
	}
	return nil
}

// changeRate ends the current segment and starts one at rate, summing the
// old segment's ring-down with the new one's pre-ringing (see overlapMs).
func (p *producer) changeRate(rate int) error {
	old := p.rate
	if err := p.feed(p.stage); err != nil {
		return err
	}
	p.stage = p.stage[:0]
	p.hasOdd = false // half a sample at the old rate is not a sample
	// Output index of the end of the old audio, rounded to the 48 kHz grid.
	endOut := (p.segIn*SampleRate + old/2) / old
	end := p.segBase + endOut
	if err := p.feed(p.zeros[:old*overlapMs/1000*2]); err != nil {
		return err
	}
	if err := p.res.Flush(); err != nil {
		return fmt.Errorf("media: resample flush: %w", err)
	}
	if err := p.newSegment(rate, end-SampleRate*overlapMs/1000); err != nil {
		return err
	}
	return p.feed(p.zeros[:rate*overlapMs/1000*2])
}

// ready is how much of pending is final: everything before where the
// current segment's next output lands.
func (p *producer) ready() int {
	return max(0, min(len(p.pending), p.segBase+p.segOut))
}

// push moves pending[:n] to the queue, waiting for room.
func (p *producer) push(ctx context.Context, n int) error {
	done := 0
	for done < n {
		k, err := p.s.q.push(p.epoch, p.pending[done:n], 0)
		done += k
		if err != nil {
			return err
		}
		if done < n {
			if err := p.wait(ctx); err != nil {
				return err
			}
		}
	}
	p.genOut += n
	m := copy(p.pending, p.pending[n:])
	p.pending = p.pending[:m]
	p.segBase -= n
	return nil
}

// pushZeros queues n zero samples, waiting for room.
func (p *producer) pushZeros(ctx context.Context, n int) error {
	for n > 0 {
		k, err := p.s.q.push(p.epoch, nil, n)
		n -= k
		if err != nil {
			return err
		}
		if n > 0 {
			if err := p.wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *producer) wait(ctx context.Context) error {
	select {
	case <-p.s.q.space:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.s.closing:
		return ErrClosed
	}
}
