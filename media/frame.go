package media

import (
	"errors"
	"math"
	"runtime"
	"time"

	"github.com/pion/rtp"
)

// minLead is how long audio waits before a talkspurt starts, unless its
// generation has ended, however much of it is queued: a TTS that sends
// exactly in real time (each message when its audio is due) is then at
// least this far ahead of the pacer, so that when the queue runs dry on
// libsoxr's held-back output the drain's provisional frame is still queued
// when the next message comes, and is taken back (seamless). Measured: one
// frame (audio is first seen 0-20 ms after it came) failed a few runs in a
// hundred under -race on a loaded machine; two did not.
const minLead = 2 * FrameDuration

// sendFrame builds and writes the packet for grid slot n. Allocation-free
// (a drain, once per utterance end, calls libsoxr, which allocates).
func (s *Stream) sendFrame(n int64, now time.Time, perr time.Duration) {
	if s.dtmf.busy.Load() && s.sendDTMFFrame(n, perr) {
		return // speech is held while digits play
	}
	need := 1
	waited := false
	if !s.lastSpch {
		switch waiting := now.Sub(s.waitFrom); {
		case s.gap == 1 && s.holding.Load():
			// One frame of underrun: go on with what there is.
			need = 1
		case s.cfg.PreRoll < 0:
			need = 1
		case s.waitFrom.IsZero() || waiting < minLead:
			// Audio seen first less than minLead ago starts a talkspurt only
			// if its generation has ended (see minLead).
			need = math.MaxInt
		case waiting >= s.cfg.PreRollWait:
			need, waited = 1, true
		default:
			need = s.preRoll
		}
	}
	ok, epoch, left := s.q.pop(s.frame, need)
	if !ok && need == 1 && s.holding.Load() {
		// The queue ran dry inside a talkspurt (or the pre-roll wait is
		// over): queue what the producer holds and try again.
		s.drain()
		ok, epoch, left = s.q.pop(s.frame, 1)
	}
	if epoch != s.epoch {
		// A Clear ran: the generation in flight is abandoned.
		s.epoch = epoch
		s.genOpen, s.gap = false, 0
		s.waitFrom = time.Time{}
	}
	payload := s.silence
	speech := false
	if ok {
		if !s.lastSpch && s.sentAny {
			// (The stream's first packet: a fresh encoder already matches
			// the receiver's fresh decoder.)
			s.primeEncoder()
		}
		k, err := s.enc.Encode(s.frame, s.payload)
		if err != nil {
			// Throttled: the first error, then one line per 30 s of errors.
			if n := s.c.encodeErrs.Add(1); n == 1 || n%1500 == 0 {
				s.log.Warn("media: opus encode failed; silence sent", "err", err, "errors", n)
			}
		} else {
			payload, speech = s.payload[:k], true
		}
	}
	// Clear between pop and here: the next frame on the wire is silence.
	if speech && s.q.currentEpoch() != epoch {
		payload, speech = s.silence, false
		s.genOpen, s.gap = false, 0
	}
	marker := speech && !s.lastSpch
	s.pkt.PayloadType = s.cfg.Codec.PayloadType()
	s.pkt.Marker = marker
	s.pkt.SequenceNumber = s.seq
	s.pkt.Timestamp = s.ts0 + uint32(n)*uint32(s.fs)
	s.pkt.Payload = payload
	s.seq++
	s.sentAny = true
	late := s.writeRTP(&s.pkt, perr)
	if speech {
		s.c.speechFrames.Add(1)
		if s.gap > 0 && s.genOpen {
			s.c.underruns.Add(s.gap) // the generation went on after a gap
		}
		s.gap = 0
		if marker {
			s.c.talkspurts.Add(1)
			if waited {
				s.c.preRollWaits.Add(1)
			}
		}
	} else {
		s.c.silenceFrames.Add(1)
		if s.genOpen {
			s.gap++
		}
	}
	s.lastSpch = speech
	if s.cfg.OnFrame != nil {
		s.cfg.OnFrame(perr, late)
	}
	if speech && !s.genOpen {
		s.genOpen = true
		s.emit(EventSpeaking, now)
	}
	for {
		e, ok := s.q.takeEntry(epoch)
		if !ok {
			break
		}
		if e.mark {
			s.c.marks.Add(1)
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Kind: EventMark, At: now, Mark: e.name, Cleared: e.cleared})
			}
			continue
		}
		if !s.genOpen { // an empty generation (or one whose frames all failed to encode)
			s.emit(EventSpeaking, now)
		}
		s.genOpen, s.gap = false, 0
		s.c.generations.Add(1)
		s.emit(EventDone, now)
	}
	switch {
	case speech:
		s.waitFrom = time.Time{}
	case left > 0 || s.holding.Load():
		if s.waitFrom.IsZero() {
			s.waitFrom = now
		}
	default:
		s.waitFrom = time.Time{}
	}
}

// drainSpin bounds how long the pacer polls prodMu while a Write or
// EndGeneration is in progress. With the queue empty they cannot be waiting
// for room, so they are resampling or queueing: CPU work that ends. Then
// its audio may well be queued already.
const drainSpin = time.Millisecond

// drain queues what the producer holds (producer.drain). If the producer is
// busy, it polls TryLock for at most drainSpin: the pacer never waits on
// the producer's lock.
func (s *Stream) drain() {
	if !s.holding.Load() {
		return
	}
	if !s.prodMu.TryLock() {
		until := time.Now().Add(drainSpin)
		for {
			runtime.Gosched()
			if s.prodMu.TryLock() {
				break
			}
			if time.Now().After(until) {
				return
			}
		}
	}
	defer s.prodMu.Unlock()
	p := &s.prod
	ok, err := p.drain()
	if err != nil {
		if !errors.Is(err, ErrCleared) {
			s.log.Warn("media: drain failed; the held audio is dropped", "err", err)
		}
		p.drop()
		p.sync()
	}
	p.publish()
	if ok {
		s.c.drains.Add(1)
	}
}

// primeEncoder puts the encoder in the state the receiver's decoder is in
// at the start of a talkspurt: it just decoded a silence packet. Resetting
// alone is not enough: a fresh CELT encoder's first frame after a decoded
// silence packet was measured to come out up to 14 dB too quiet for ~100 ms
// (TestToneRoundTrip caught it); reset plus one encoded zero frame (output
// discarded) matched the decoder every time. Costs one encode per talkspurt.
func (s *Stream) primeEncoder() {
	_ = s.enc.Reset()
	_, _ = s.enc.Encode(s.zeros, s.payload)
}

func (s *Stream) emit(k EventKind, at time.Time) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(Event{Kind: k, At: at})
	}
}

// writeRTP writes p, counting it as sent (and late when perr, how late its
// slot was, reaches a frame). A failed write is counted and logged,
// throttled: the first error, then one line per 30 s of errors. It reports
// whether the frame was late.
func (s *Stream) writeRTP(p *rtp.Packet, perr time.Duration) bool {
	err := s.cfg.Writer.WriteRTP(p)
	s.c.framesSent.Add(1)
	if err != nil {
		if n := s.c.writeErrors.Add(1); n == 1 || n%1500 == 0 {
			s.log.Warn("media: write RTP failed", "err", err, "errors", n)
		}
	}
	late := perr >= FrameDuration
	if late {
		s.c.lateFrames.Add(1)
	}
	return late
}
