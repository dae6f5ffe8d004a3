package media

import (
	"context"
	"time"
)

// Run is the pacer: it sends one packet per 20 ms on the absolute schedule
// start + n·20 ms until ctx is done or the stream is closed, then returns
// nil. The caller owns the goroutine; Run may be called once (ErrRunning).
//
// Frame n always carries RTP timestamp ts0 + 960·n (RFC 7587 §4.1), so
// timestamps stay on the wall-clock grid whatever happens. When the
// goroutine wakes up late it sends the missed frames at once, at most
// MaxCatchUp of them beyond the current one; older slots are skipped
// (SkippedFrames) and the timestamp jumps with them, so the receiver sees a
// gap rather than a growing delay. Audio is never dropped by the pacer.
//
// A frame is speech when a whole frame is queued, otherwise the precomputed
// silence packet (no encoder run). A talkspurt starts only when PreRoll is
// queued, the generation has ended, or PreRollWait has passed since audio
// started waiting. Inside a talkspurt, when the queue has no whole frame
// and the producer holds audio (staged, held back by libsoxr, a partial
// frame), the pacer drains it without waiting for EndGeneration, unless the
// producer is busy (TryLock): the end of an utterance leaves with the rest
// of it. The marker bit is set on the
// first speech packet after a silence packet (RFC 3551 §4.1) and only
// there. No lock is held while the PacketWriter runs.
func (s *Stream) Run(ctx context.Context) error {
	if s.started.Swap(true) {
		return ErrRunning
	}
	defer close(s.runDone)
	if isClosed(s.closing) {
		return ErrClosed
	}
	start := s.clock.Now()
	timer := s.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	s.epoch = s.q.currentEpoch()
	var n int64 // next grid slot
	for {
		deadline := start.Add(time.Duration(n) * FrameDuration)
		now := s.clock.Now()
		if wait := deadline.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-s.closing:
				return nil
			case <-timer.C():
			}
			now = s.clock.Now()
		} else {
			select {
			case <-ctx.Done():
				return nil
			case <-s.closing:
				return nil
			default:
			}
		}
		// Slots n..last are due; last is the slot whose deadline just passed.
		last := int64(now.Sub(start) / FrameDuration)
		if last < n {
			last = n // woke a hair early by the clock's reading: send slot n
		}
		if skip := last - n - int64(s.cfg.MaxCatchUp); skip > 0 {
			n += skip
			s.c.skippedFrames.Add(uint64(skip))
		}
		for ; n <= last; n++ {
			perr := now.Sub(start.Add(time.Duration(n) * FrameDuration))
			s.sendFrame(n, now, perr)
		}
	}
}
