package media

import "context"

// Mark queues a mark after every frame queued so far: EventMark with its
// name follows when the last of those frames is on the wire (at the next
// frame if nothing is queued), or with Cleared set at the first frame after
// a Clear that dropped them. A generation in progress is not ended: audio
// written after Mark plays after it, and the part of the current frame
// already written (less than 20 ms) counts as after it too; callers mark
// between generations (after EndGeneration). Mark blocks while
// maxPendingEnds ends and marks are waiting for the pacer; it returns
// ErrCleared if a Clear ran while it waited (the mark is not queued),
// ctx.Err() or ErrClosed. Called from the producer goroutine, like Write.
func (s *Stream) Mark(ctx context.Context, name string) error {
	s.prodMu.Lock()
	defer s.prodMu.Unlock()
	if isClosed(s.closing) {
		return ErrClosed
	}
	p := &s.prod
	p.sync() // a Clear since the last call: drop what was left of before it
	for {
		ok, err := s.q.addMark(p.epoch, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := p.wait(ctx); err != nil {
			return err
		}
	}
}
