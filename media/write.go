package media

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A chunk's path, top to bottom: Stream.Write → producer.write (odd-byte
// carry, staging small chunks, cutting big ones) → feed (libsoxr) → sink
// (decoded into pending, overlap-added across a rate change) → ready (what
// libsoxr will not touch again) → push (into the queue's 20 ms frames,
// waiting for room).

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
	p.publish()
	return err
}

func (p *producer) write(ctx context.Context, pcm []byte, rate int) error {
	if p.drained && len(pcm) > 0 {
		p.resume()
	}
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
	p.padded = 0 // real audio follows a drain's padding
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
		if err := p.feedReal(chunk); err != nil {
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

// feedReal resamples whole samples of the TTS's audio.
func (p *producer) feedReal(b []byte) error {
	err := p.feed(b)
	p.realIn = p.segIn
	return err
}

// feed resamples whole samples b into pending (through sink).
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

// sink adapts producer to io.Writer: the resampler's destination.
type sink struct{ p *producer }

func (k *sink) Write(b []byte) (int, error) { k.p.sinkWrite(b); return len(b), nil }

// sinkWrite places the segment's next output samples at
// pending[segBase+segOut...].
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
		case pos < 0: // already pushed, pre-ringing, or zeros a drain fed: dropped
		case pos < len(p.pending):
			p.pending[pos] = sat16(int32(p.pending[pos]) + int32(v))
		default:
			p.pending = append(p.pending, v)
		}
	}
}

func sat16(v int32) int16 {
	return int16(max(-32768, min(32767, v)))
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
	p.consume(n)
	return nil
}

// consume forgets pending[:n], now in the queue.
func (p *producer) consume(n int) {
	p.genOut += n
	m := copy(p.pending, p.pending[n:])
	p.pending = p.pending[:m]
	p.segBase -= n
}

// wait blocks until the pacer frees room, ctx ends or the stream closes.
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
