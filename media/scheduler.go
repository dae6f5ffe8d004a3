package media

import (
	"runtime"
	"sync"
	"time"
)

// Phase slots of the 20 ms grid: a stream is assigned one slot when it
// starts, so its deadlines are epoch + slot·SlotDuration + k·FrameDuration.
const (
	// SlotDuration is the spacing of the scheduler's phase slots.
	SlotDuration = time.Millisecond
	// Slots is the number of phase slots in one frame.
	Slots = int(FrameDuration / SlotDuration)
	// EvictAfter is how long one stream's frame may take (encoder and
	// writer), twice in a row, before the scheduler hands that stream to a
	// goroutine of its own, so a slow call stops delaying its neighbours.
	// (Once may be the process losing its core for a moment.)
	EvictAfter = 10 * time.Millisecond
)

// Scheduler paces many streams with a few goroutines: one worker per core
// (GOMAXPROCS) wakes at each occupied 1 ms slot and sends the frames that
// are due there. Every stream keeps its own exact grid (start + n·20 ms)
// and RTP timestamps. The workers take the slots' ticks in turn and help
// each other finish a slot, so a worker held up by one stream's writer does
// not hold up the next slots; a stream whose frame took longer than
// EvictAfter twice in a row leaves the scheduler for the goroutine that called Run.
//
// Workers run only while streams are registered: the scheduler has no
// goroutine when it paces nothing, so the zero-stream state needs no Close.
type Scheduler struct {
	clock   Clock
	workers int
	epoch   time.Time

	mu       sync.Mutex
	slots    [Slots][]*Stream
	count    int
	nextTick int64         // the next tick a worker claims
	wake     chan struct{} // closed to wake idle workers
	quit     chan struct{} // closed when the last stream leaves
	jobs     []*slotJob    // each worker's current slot, for helpers
}

// slotJob is the list of streams a worker serves at one tick; other workers
// take streams from it when they wake while it is unfinished.
type slotJob struct {
	mu  sync.Mutex
	buf []*Stream
	i   int
}

// schedState is a Stream's place in a Scheduler.
type schedState struct {
	mu       sync.Mutex // held by the worker serving the stream
	start    time.Time  // deadline of frame 0
	n        int64      // next frame
	slot     int
	slow     int           // frames in a row that took over EvictAfter
	detached bool          // left the scheduler (Run returned or evicted)
	evict    chan struct{} // closed when a worker evicts the stream
}

// NewScheduler returns a scheduler with the given number of workers
// (GOMAXPROCS when workers ≤ 0).
func NewScheduler(workers int) *Scheduler {
	return newScheduler(workers, realClock{})
}

func newScheduler(workers int, clk Clock) *Scheduler {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Scheduler{clock: clk, workers: workers, epoch: clk.Now(), wake: make(chan struct{})}
}

var defaultScheduler = NewScheduler(0)

// add registers s on the least loaded slot; its first frame is due at that
// slot's next tick that no worker has claimed yet.
func (sc *Scheduler) add(s *Stream) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	best := 0
	for i := 1; i < Slots; i++ {
		if len(sc.slots[i]) < len(sc.slots[best]) {
			best = i
		}
	}
	tick := max(sc.nextTick, int64(sc.clock.Now().Sub(sc.epoch)/SlotDuration)+1)
	tick += (int64(best) - tick%int64(Slots) + int64(Slots)) % int64(Slots)
	s.sched = schedState{
		start: sc.epoch.Add(time.Duration(tick) * SlotDuration),
		slot:  best,
		evict: make(chan struct{}),
	}
	sc.slots[best] = append(sc.slots[best], s)
	sc.count++
	if sc.count == 1 {
		sc.quit = make(chan struct{})
		sc.nextTick = max(sc.nextTick, tick-int64(Slots)+1)
		for range sc.workers {
			j := &slotJob{}
			sc.jobs = append(sc.jobs, j)
			go sc.work(j, sc.quit)
		}
	}
	close(sc.wake)
	sc.wake = make(chan struct{})
}

// remove takes s out of its slot and waits until no worker serves it. When
// the last stream leaves, the workers exit (each within one wake-up).
func (sc *Scheduler) remove(s *Stream) {
	s.sched.mu.Lock()
	s.sched.detached = true
	s.sched.mu.Unlock()
	sc.mu.Lock()
	list := sc.slots[s.sched.slot]
	for i, x := range list {
		if x == s {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			sc.slots[s.sched.slot] = list[:len(list)-1]
			sc.count--
			break
		}
	}
	if sc.count == 0 {
		close(sc.quit)
		sc.jobs = nil
	}
	sc.mu.Unlock()
}

// claim returns the next tick at which a slot has streams, or ok=false and a
// channel to wait on when there is none (nil when quit is closed: the
// worker's generation is over and it must not take a tick from the next).
func (sc *Scheduler) claim(quit chan struct{}) (tick int64, wake chan struct{}, ok bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	select {
	case <-quit:
		return 0, nil, false
	default:
	}
	for t := sc.nextTick; t < sc.nextTick+int64(Slots); t++ {
		if len(sc.slots[t%int64(Slots)]) > 0 {
			sc.nextTick = t + 1
			return t, nil, true
		}
	}
	return 0, sc.wake, false
}

// work is one worker: claim a tick, sleep until it, help unfinished slots of
// the other workers, then serve the tick's slot.
func (sc *Scheduler) work(own *slotJob, quit chan struct{}) {
	timer := sc.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var others []*slotJob
	for {
		tick, wake, ok := sc.claim(quit)
		if !ok {
			if wake == nil {
				return
			}
			select {
			case <-quit:
				return
			case <-wake:
				continue
			}
		}
		at := sc.epoch.Add(time.Duration(tick) * SlotDuration)
		if wait := at.Sub(sc.clock.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-quit:
				return
			case <-timer.C():
			}
		}
		sc.mu.Lock()
		others = append(others[:0], sc.jobs...)
		own.mu.Lock()
		own.buf = append(own.buf[:0], sc.slots[tick%int64(Slots)]...)
		own.i = 0
		own.mu.Unlock()
		sc.mu.Unlock()
		for _, j := range others {
			if j != own {
				sc.serveJob(j)
			}
		}
		sc.serveJob(own)
	}
}

// serveJob serves the job's remaining streams, one at a time.
func (sc *Scheduler) serveJob(j *slotJob) {
	for {
		j.mu.Lock()
		if j.i >= len(j.buf) {
			j.mu.Unlock()
			return
		}
		s := j.buf[j.i]
		j.buf[j.i] = nil
		j.i++
		j.mu.Unlock()
		sc.serve(s)
	}
}

// serve sends s's due frames unless another worker is at it already (it
// then catches up itself) or s has left.
func (sc *Scheduler) serve(s *Stream) {
	st := &s.sched
	if !st.mu.TryLock() {
		return
	}
	defer st.mu.Unlock()
	if st.detached {
		return
	}
	now := sc.clock.Now()
	s.sendDue(st.start, &st.n, now, false)
	if sc.clock.Now().Sub(now) <= EvictAfter {
		st.slow = 0
		return
	}
	if st.slow++; st.slow >= 2 {
		st.detached = true
		close(st.evict)
	}
}
