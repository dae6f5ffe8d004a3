package media

import "fmt"

// A segment is one run of libsoxr at one input rate. Its output sample k
// lands at pending[segBase+k]; a rate change ends one segment and starts the
// next with their edges overlap-added, so the signal stays continuous.

// newSegment starts a resampler segment at rate whose output begins at
// pending[base].
func (p *producer) newSegment(rate, base int) error {
	if p.res == nil || p.rate != rate {
		if p.res != nil {
			_ = p.res.Close()
			p.res = nil
		}
		r, err := p.s.newResampler(&sink{p}, rate, p.s.rate, p.s.cfg.Resampler)
		if err != nil {
			return err
		}
		p.res, p.rate = r, rate
	}
	p.segBase, p.segIn, p.segOut, p.realIn = base, 0, 0, 0
	return nil
}

// flushSegment feeds what is staged and flushes the resampler's tail.
func (p *producer) flushSegment() error {
	if p.res == nil {
		return nil
	}
	if err := p.feedReal(p.stage); err != nil {
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
	if err := p.feedReal(p.stage); err != nil {
		return err
	}
	p.stage = p.stage[:0]
	p.hasOdd = false // half a sample at the old rate is not a sample
	// Output index of the end of the old audio, rounded to the output grid.
	endOut := (p.segIn*p.s.rate + old/2) / old
	end := p.segBase + endOut
	if err := p.feed(p.zeros[:old*overlapMs/1000*2]); err != nil {
		return err
	}
	if err := p.res.Flush(); err != nil {
		return fmt.Errorf("media: resample flush: %w", err)
	}
	if err := p.newSegment(rate, end-p.s.rate*overlapMs/1000); err != nil {
		return err
	}
	return p.feed(p.zeros[:rate*overlapMs/1000*2])
}
