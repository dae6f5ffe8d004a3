package media

import (
	"context"
	"errors"
	"fmt"
)

// maxDrainFeeds bounds the zero blocks a drain feeds libsoxr to release its
// held-back output (MediumQ holds back at most ~92 ms at 8 kHz: 5 blocks).
const maxDrainFeeds = 32

// EndGeneration ends the current generation: it resamples what is staged,
// flushes the resampler's held-back tail (the end of the sentence), pads the
// last frame with zeros (plus the encoder's lookahead, so that the last
// sample leaves in a packet) and marks it: EventDone follows when that frame
// is on the wire. If the pacer already drained the generation (see
// StreamConfig.PreRoll) and no audio came since, nothing more is queued.
// With no audio since the last EndGeneration the generation is empty: its
// EventSpeaking and EventDone come together at the next frame after the
// previous generation's EventDone. It blocks while the queue is full; it
// returns ErrCleared if Clear interrupted this generation (no EventDone will
// come), ctx.Err() or ErrClosed.
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
	p.publish()
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
		p.segBase, p.segIn, p.segOut, p.realIn = 0, 0, 0, 0
	}
	if p.genOut > 0 {
		total := roundFrames(max(p.genOut, p.genOut-p.padded+p.s.lookahead))
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
	p.genOut, p.padded = 0, 0
	return nil
}

// roundFrames rounds n samples up to whole frames.
func roundFrames(n int) int {
	return (n + FrameSamples - 1) / FrameSamples * FrameSamples
}

// pushZeros queues n zero samples, waiting for room.
func (p *producer) pushZeros(ctx context.Context, n int) error {
	for n > 0 {
		k, err := p.s.q.push(p.epoch, nil, n)
		n -= k
		p.genOut += k
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

// drain queues all of the generation's audio written so far, in whole
// frames, without waiting for EndGeneration: the staged input, the output
// libsoxr holds back (released by feeding it zeros, not by flushing it, so
// its filter state runs on), and the partial frame, padded with libsoxr's
// own ring-down (plus the encoder's lookahead, so that the last sample
// leaves in a packet). The pacer runs it when the queue is about to run dry
// (and when the pre-roll wait is over); it never blocks: it does nothing
// when the queue lacks room. It reports whether it queued anything.
//
// If more audio of the generation follows, its first sample lands right
// after the padded frame: libsoxr's output for the zeros it was fed beyond
// that point is dropped, so the continuation is the resampler's own
// continuous output, shifted by a whole number of 48 kHz samples (the
// padding, under 20 ms + lookahead). That only happens when the TTS fell
// behind real time, where the alternative is a 20 ms silence packet.
func (p *producer) drain() (bool, error) {
	if p.sync() || !p.holding() {
		return false, nil
	}
	end := 0 // pending index just after the last real sample
	if p.res != nil {
		if err := p.feedReal(p.stage); err != nil {
			return false, err
		}
		p.stage = p.stage[:0]
		end = max(0, p.segBase+p.outIndex(p.realIn))
	}
	total := roundFrames(p.genOut+end+p.s.lookahead) - p.genOut
	if p.s.q.room() < total {
		return false, nil // the queue is not running dry
	}
	if p.res != nil {
		step := p.zeros[:p.rate*overlapMs/1000*2]
		for i := 0; p.ready() < total; i++ {
			if i == maxDrainFeeds {
				return false, fmt.Errorf("media: drain: resampler released %d of %d samples", p.ready(), total)
			}
			if err := p.feed(step); err != nil {
				return false, err
			}
		}
	}
	for len(p.pending) < total {
		p.pending = append(p.pending, 0)
	}
	k, err := p.s.q.push(p.epoch, p.pending[:total], 0)
	if err != nil {
		return false, err
	}
	if k < total { // room was checked and only the pacer frees room
		return false, fmt.Errorf("media: drain: queued %d of %d samples", k, total)
	}
	p.consume(total)
	p.padded = total - end
	// Whatever libsoxr still holds is the zeros just fed: dropped. The next
	// real input sample lands at pending[0].
	p.pending = p.pending[:0]
	if p.res != nil {
		p.segBase = -p.outIndex(p.segIn)
	}
	return true, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
