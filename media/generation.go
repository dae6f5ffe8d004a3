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
	if p.drained {
		// All of the audio is queued; what libsoxr holds is zeros.
		p.pending = p.pending[:0]
		if p.res != nil {
			p.segBase = -p.outIndex(p.segIn)
		}
		p.drained, p.provFrames, p.provLen, p.provPart, p.shift = false, 0, 0, 0, 0
	}
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
		total := p.roundFrames(max(p.genOut, p.genOut-p.padded+p.s.lookahead))
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
func (p *producer) roundFrames(n int) int {
	fs := p.s.fs
	return (n + fs - 1) / fs * fs
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
// that its filter state runs on) and the partial frame, completed with
// libsoxr's ring-down, plus the encoder's lookahead so that the last sample
// leaves in a packet. The pacer runs it when the queue has run dry inside a
// talkspurt (or the pre-roll wait is over). It never blocks: it does
// nothing when the queue lacks room. It reports whether it queued anything.
//
// The frames that hold the end of the audio and its padding are
// provisional: if more audio of the generation comes before the pacer
// reaches them, resume takes them back and the new audio continues the old
// seamlessly (overlap-added with the ring-down). Otherwise the new audio
// starts on the next frame: that happens only when the TTS fell behind real
// time, where the alternative was a 20 ms silence packet.
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
	g0 := p.genOut
	total := p.roundFrames(g0+end+p.s.lookahead) - g0
	if p.s.q.room() < total {
		return false, nil // the queue is not running dry
	}
	if p.res != nil {
		// Release the held-back output and overlapMs of ring-down beyond
		// the audio's end, for a continuation to be added to. Zeros go in
		// whole 20 ms blocks: their output is a whole number of samples.
		step := p.zeros[:p.rate*overlapMs/1000*2]
		want := max(total, end+p.s.rate*overlapMs/1000)
		for i := 0; p.ready() < want; i++ {
			if i == maxDrainFeeds {
				return false, fmt.Errorf("media: drain: resampler released %d of %d samples", p.ready(), want)
			}
			if err := p.feed(step); err != nil {
				return false, err
			}
		}
		p.shift = p.outIndex(p.segIn) - p.outIndex(p.realIn)
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
	// Frames wholly of real audio are final; the rest is provisional.
	final := max(0, (g0+end)/p.s.fs*p.s.fs-g0)
	p.consume(final)
	p.provLen = total - final
	p.provPart = (g0 + final) % p.s.fs
	p.provFrames = (p.provPart + p.provLen) / p.s.fs
	p.genOut += p.provLen
	p.padded = total - end
	p.drained = true
	return true, nil
}

// resume continues a drained generation with new audio. If the pacer has
// not reached the provisional frames, they are taken back and the new
// audio's output (and its pre-ringing) is added to the ring-down in
// pending, as if no zeros had been fed: seamless. Otherwise what was
// queued stays, and the new audio starts on the next frame.
func (p *producer) resume() {
	p.drained = false
	p.padded = 0
	if p.provFrames > 0 && p.s.q.retract(p.epoch, p.provFrames, p.provPart) {
		p.genOut -= p.provLen
		p.segBase -= p.shift
		p.s.c.resumes.Add(1)
	} else {
		// Late: whatever libsoxr still holds is the zeros: dropped. The
		// next real input sample lands at pending[0].
		p.pending = p.pending[:0]
		if p.res != nil {
			p.segBase = -p.outIndex(p.segIn)
		}
	}
	p.provFrames, p.provLen, p.provPart, p.shift = 0, 0, 0, 0
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
