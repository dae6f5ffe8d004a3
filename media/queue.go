package media

import "sync"

// maxPendingEnds bounds the generation ends queued at once. A generation
// takes at least one frame unless it is empty, so this is never reached in
// practice; EndGeneration waits for room like Write does.
const maxPendingEnds = 64

// frameQueue is the bounded queue between the producer (Write) and the
// pacer: a ring of 20 ms frames at the codec's clock rate. The producer fills the frame at
// the tail; the pacer only sees whole (committed) frames. Generations are
// padded to whole frames, so frame boundaries never straddle generations.
//
// Frames are numbered by the order they were committed; a generation end is
// stored as the number of committed frames after its last frame, so that the
// pacer can tell when that frame went out.
type frameQueue struct {
	// space receives a token (non-blocking send, cap 1) when the pacer frees
	// room, when Clear runs and on close: the single producer waits on it.
	space chan struct{}

	mu sync.Mutex // guards everything below
	// buf holds cap frames of fs samples.
	buf     []int16
	fs      int // samples per frame
	cap     int // frames
	head    int // slot of the oldest committed frame
	count   int // committed frames
	partial int // samples in the frame being filled, slot (head+count)%cap
	// committed and popped count frames since the start (never reset).
	committed, popped uint64
	// ends: generation ends and marks waiting for the pacer, in the order
	// they were queued, each at the committed-frame number after the last
	// frame before it (ascending), in a ring of maxPendingEnds.
	ends              [maxPendingEnds]queueEntry
	endHead, endCount int
	// epoch increments on every Clear.
	epoch  uint64
	closed bool
}

func newFrameQueue(frames, fs int) *frameQueue {
	return &frameQueue{
		space: make(chan struct{}, 1),
		buf:   make([]int16, frames*fs),
		fs:    fs,
		cap:   frames,
	}
}

// signal wakes the producer without blocking; callable with or without mu.
func (q *frameQueue) signal() {
	select {
	case q.space <- struct{}{}:
	default:
	}
}

// currentEpoch returns the Clear count.
func (q *frameQueue) currentEpoch() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.epoch
}

// push appends samples (or n zeros when samples is nil) to the tail frame
// for the producer of epoch. It returns how many it took; fewer than asked
// means the queue is full. ErrCleared if a Clear ran since epoch.
func (q *frameQueue) push(epoch uint64, samples []int16, zeros int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, ErrClosed
	}
	if q.epoch != epoch {
		return 0, ErrCleared
	}
	want := zeros
	if samples != nil {
		want = len(samples)
	}
	took := 0
	for took < want && q.count < q.cap {
		slot := (q.head + q.count) % q.cap
		dst := q.buf[slot*q.fs+q.partial : (slot+1)*q.fs]
		var n int
		if samples != nil {
			n = copy(dst, samples[took:])
		} else {
			n = min(len(dst), want-took)
			clear(dst[:n])
		}
		took += n
		q.partial += n
		if q.partial == q.fs {
			q.partial = 0
			q.count++
			q.committed++
		}
	}
	return took, nil
}

// markEnd records the end of the current generation after the last
// committed frame. The tail frame must be empty (the generation was padded).
// It reports false when the ring of ends is full.
func (q *frameQueue) markEnd(epoch uint64) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushEndLocked(epoch, queueEntry{pos: q.committed})
}

// addMark queues a mark after the last committed frame. It reports false
// when the ring is full.
func (q *frameQueue) addMark(epoch uint64, name string) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushEndLocked(epoch, queueEntry{pos: q.committed, mark: true, name: name})
}

// pushEndLocked appends e to the ring of ends and marks of generation epoch.
// It reports false when the ring is full. q.mu must be held.
func (q *frameQueue) pushEndLocked(epoch uint64, e queueEntry) (bool, error) {
	if q.closed {
		return false, ErrClosed
	}
	if q.epoch != epoch {
		return false, ErrCleared
	}
	if q.endCount == maxPendingEnds {
		return false, nil
	}
	q.ends[(q.endHead+q.endCount)%maxPendingEnds] = e
	q.endCount++
	return true, nil
}

// pop copies the oldest committed frame into dst and reports whether there
// was one, with the epoch it belongs to and the whole frames left behind it.
// It pops only when at least need frames are committed or a generation end
// is pending (the generation's frames are all committed): the pre-roll.
func (q *frameQueue) pop(dst []int16, need int) (ok bool, epoch uint64, left int) {
	q.mu.Lock()
	epoch = q.epoch
	if q.count == 0 || (q.count < need && !q.endAhead()) {
		left = q.count
		q.mu.Unlock()
		return false, epoch, left
	}
	copy(dst, q.buf[q.head*q.fs:(q.head+1)*q.fs])
	q.head = (q.head + 1) % q.cap
	q.count--
	q.popped++
	left = q.count
	q.mu.Unlock()
	q.signal()
	return true, epoch, left
}

// endAhead reports whether a generation end lies beyond the popped frames:
// every frame up to it is committed. Called with mu held.
func (q *frameQueue) endAhead() bool {
	return q.endCount > 0 && q.ends[(q.endHead+q.endCount-1)%maxPendingEnds].pos > q.popped
}

// retract takes back the last n committed frames if the pacer has not
// popped any of them, and makes the first of them the frame being filled
// again, with its first partial samples kept. It reports whether it did.
func (q *frameQueue) retract(epoch uint64, n, partial int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.epoch != epoch || q.count < n || q.partial != 0 ||
		(q.endCount > 0 && q.ends[(q.endHead+q.endCount-1)%maxPendingEnds].pos > q.committed-uint64(n)) {
		return false
	}
	q.count -= n
	q.committed -= uint64(n)
	q.partial = partial
	return true
}

// room returns how many samples push would take now.
func (q *frameQueue) room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return (q.cap-q.count)*q.fs - q.partial
}

// takeEntry removes and returns the oldest generation end or mark whose
// last frame before it has been popped, provided no Clear ran since epoch.
func (q *frameQueue) takeEntry(epoch uint64) (queueEntry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.epoch != epoch || q.endCount == 0 || q.ends[q.endHead].pos > q.popped {
		return queueEntry{}, false
	}
	e := q.ends[q.endHead]
	q.ends[q.endHead] = queueEntry{}
	q.endHead = (q.endHead + 1) % maxPendingEnds
	q.endCount--
	q.signal()
	return e, true
}

// frames returns the number of whole frames queued.
func (q *frameQueue) frames() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// dropPartial forgets the frame being filled (the producer abandoned its
// generation), unless a Clear already did.
func (q *frameQueue) dropPartial(epoch uint64) {
	q.mu.Lock()
	if q.epoch == epoch {
		q.partial = 0
	}
	q.mu.Unlock()
}

// clear drops every queued frame, the partial frame and pending ends, and
// starts a new epoch. Pending marks stay, in order, marked cleared and due
// at once: the pacer reports them at its next frame. It wakes a waiting
// producer.
func (q *frameQueue) clear() {
	q.mu.Lock()
	q.popped += uint64(q.count)
	q.head, q.count, q.partial = 0, 0, 0
	old := q.ends
	q.ends = [maxPendingEnds]queueEntry{}
	kept := 0
	for i := range q.endCount {
		if e := old[(q.endHead+i)%maxPendingEnds]; e.mark {
			e.pos, e.cleared = q.popped, true
			q.ends[kept] = e
			kept++
		}
	}
	q.endHead, q.endCount = 0, kept
	q.epoch++
	q.mu.Unlock()
	q.signal()
}

func (q *frameQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// queueEntry is a generation end or a mark in the queue.
type queueEntry struct {
	pos     uint64 // committed frames before it
	mark    bool   // a mark (else a generation end)
	cleared bool   // a mark a Clear dropped the audio before
	name    string // the mark's name
}
