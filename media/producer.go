package media

import (
	"context"
	"errors"
	"fmt"
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
// Close. The resampler is freed; the next Write makes a new one.
func (p *producer) drop() {
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
