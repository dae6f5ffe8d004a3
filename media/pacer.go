package media

import (
	"context"
	"time"
)

// Run paces the stream until ctx is done or the stream is closed, then
// returns nil. The caller owns the goroutine; Run may be called once
// (ErrRunning). With the real clock the stream joins the shared Scheduler
// (WithScheduler, or one per process with GOMAXPROCS workers) and Run only
// waits; a stream that the scheduler evicts (one frame took longer than
// EvictAfter) goes on pacing on this goroutine, on the same grid. With an
// injected clock (WithClock) Run paces on its own goroutine.
//
// The stream sends one packet per 20 ms on the absolute schedule
// start + n·20 ms. Frame n always carries RTP timestamp ts0 + 960·n
// (RFC 7587 §4.1), so timestamps stay on the wall-clock grid whatever
// happens. When the pacer gets to the stream late it sends the missed
// frames at once, at most MaxCatchUp of them beyond the current one; older
// slots are skipped (SkippedFrames) and the timestamp jumps with them, so
// the receiver sees a gap rather than a growing delay. Audio is never
// dropped by the pacer.
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
	s.epoch = s.q.currentEpoch()
	if _, real := s.clock.(realClock); !real {
		return s.runOwn(ctx, s.clock.Now(), 0)
	}
	sc := s.scheduler
	if sc == nil {
		sc = defaultScheduler
	}
	sc.add(s)
	select {
	case <-ctx.Done():
	case <-s.closing:
	case <-s.sched.evict:
		sc.remove(s)
		s.sched.mu.Lock() // the evicting worker's writes happen before
		start, n := s.sched.start, s.sched.n
		s.sched.mu.Unlock()
		return s.runOwn(ctx, start, n)
	}
	sc.remove(s)
	return nil
}

// runOwn paces the stream on the calling goroutine from frame n of the grid
// start + n·20 ms.
func (s *Stream) runOwn(ctx context.Context, start time.Time, n int64) error {
	timer := s.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
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
		s.sendDue(start, &n, now, true)
	}
}

// sendDue sends frames *n.. up to the one whose deadline passed last, with
// the catch-up limit, and advances *n. Early (now before frame *n's
// deadline) it sends nothing, unless force: a timer that fired a hair
// early by the clock's reading sends frame *n.
func (s *Stream) sendDue(start time.Time, n *int64, now time.Time, force bool) {
	if now.Before(start.Add(time.Duration(*n) * FrameDuration)) {
		if !force {
			return
		}
		s.sendFrame(*n, now, now.Sub(start.Add(time.Duration(*n)*FrameDuration)))
		*n++
		return
	}
	last := int64(now.Sub(start) / FrameDuration)
	if skip := last - *n - int64(s.cfg.MaxCatchUp); skip > 0 {
		*n += skip
		s.c.skippedFrames.Add(uint64(skip))
	}
	for ; *n <= last; *n++ {
		perr := now.Sub(start.Add(time.Duration(*n) * FrameDuration))
		s.sendFrame(*n, now, perr)
	}
}
