package media

import (
	"context"
	"errors"
	"fmt"
)

// Write queues PCM16LE mono audio at sampleRate (8000, 16000, 22050 or
// 24000 Hz, else ErrUnsupportedRate) to the current generation. pcm may have
// any length: a trailing odd byte is carried to the next Write. pcm is not
// retained. Write blocks while the queue is full (back-pressure); it returns
// ErrCleared if Clear ran before all of pcm was queued (the rest is
// discarded), ctx.Err() if ctx ended first (the generation's unqueued audio
// is discarded too), ErrClosed after Close. A change of sampleRate inside a
// generation starts a new resampler segment, overlap-added with the old one.
// Write and EndGeneration are called from one goroutine.
func (s *Stream) Write(ctx context.Context, pcm []byte, sampleRate int) error {
	if !supportedRate(sampleRate) {
		return fmt.Errorf("%w: %d Hz", ErrUnsupportedRate, sampleRate)
	}
	s.prodMu.Lock()
	defer s.prodMu.Unlock()
	if isClosed(s.closing) {
		return ErrClosed
	}
	p := &s.prod
	p.sync()
	err := p.write(ctx, pcm, sampleRate)
	if err != nil && !errors.Is(err, ErrClosed) {
		p.drop()
		p.sync()
	}
	return err
}

func (p *producer) write(ctx context.Context, pcm []byte, rate int) error {
	switch {
	case p.res == nil || (p.rate != rate && p.segIn == 0 && len(p.stage) == 0):
		if p.rate != rate {
			p.hasOdd = false // half a sample at another rate is not a sample
		}
		if err := p.newSegment(rate, len(p.pending)); err != nil {
			return err
		}
	case p.rate != rate:
		if err := p.changeRate(rate); err != nil {
			return err
		}
	}
	p.genOpen = true
	if len(pcm) == 0 {
		return nil
	}
	if p.hasOdd {
		p.stage = append(p.stage, p.carry, pcm[0])
		p.hasOdd = false
		pcm = pcm[1:]
	}
	if len(pcm)%2 == 1 {
		p.carry, p.hasOdd = pcm[len(pcm)-1], true
		pcm = pcm[:len(pcm)-1]
	}
	minFeed := rate * minFeedMs / 1000 * 2
	maxFeed := rate * maxFeedMs / 1000 * 2
	for len(pcm) > 0 || len(p.stage) >= minFeed {
		var chunk []byte
		switch {
		case len(p.stage) > 0:
			k := min(minFeed-len(p.stage), len(pcm))
			k = max(k, 0)
			p.stage = append(p.stage, pcm[:k]...)
			pcm = pcm[k:]
			if len(p.stage) < minFeed {
				return nil // wait for more input (or EndGeneration)
			}
			chunk = p.stage
		case len(pcm) < minFeed:
			p.stage = append(p.stage, pcm...)
			return nil
		default:
			k := min(len(pcm), maxFeed)
			chunk, pcm = pcm[:k], pcm[k:]
		}
		if err := p.feed(chunk); err != nil {
			return err
		}
		if len(p.stage) > 0 {
			p.stage = p.stage[:0]
		}
		if err := p.push(ctx, p.ready()); err != nil {
			return err
		}
	}
	return nil
}

// EndGeneration ends the current generation: it resamples what is staged,
// flushes the resampler's held-back tail (the end of the sentence), pads the
// last frame with zeros (plus the encoder's lookahead, so that the last
// sample leaves in a packet) and marks it: EventDone follows when that frame
// is on the wire. With no audio since the last EndGeneration the generation
// is empty and EventDone follows at the next frame. It blocks while the
// queue is full; it returns ErrCleared if Clear interrupted this generation
// (no EventDone will come), ctx.Err() or ErrClosed.
func (s *Stream) EndGeneration(ctx context.Context) error {
	s.prodMu.Lock()
	defer s.prodMu.Unlock()
	if isClosed(s.closing) {
		return ErrClosed
	}
	p := &s.prod
	if p.sync() {
		return ErrCleared
	}
	err := p.endGeneration(ctx)
	if err != nil && !errors.Is(err, ErrClosed) {
		p.drop()
		p.sync()
	}
	return err
}

func (p *producer) endGeneration(ctx context.Context) error {
	p.hasOdd = false // a dangling half sample at the end is not audio
	if err := p.flushSegment(); err != nil {
		return err
	}
	if err := p.push(ctx, len(p.pending)); err != nil {
		return err
	}
	if p.res != nil {
		p.segBase, p.segIn, p.segOut = 0, 0, 0
	}
	if p.genOut > 0 {
		total := p.genOut + p.s.lookahead
		total = (total + FrameSamples - 1) / FrameSamples * FrameSamples
		if err := p.pushZeros(ctx, total-p.genOut); err != nil {
			return err
		}
	}
	for {
		ok, err := p.s.q.markEnd(p.epoch)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if err := p.wait(ctx); err != nil {
			return err
		}
	}
	p.genOpen = false
	p.genOut = 0
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
