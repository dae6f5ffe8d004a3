package bridge

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/voicebridge/voicebridge/media"
)

// Mark limits.
const (
	maxMarkName = 64
	// maxPendingMarks bounds the marks a call holds unanswered.
	maxPendingMarks = 32
)

// markState tracks a call's bot marks until they are answered.
//
// A mark must not reach the playout queue before the audio of the text
// sent before it: that text may still be inside the TTS. So a mark waits
// in fifo, "held", until every generation triggered before it has ended
// (its audio and its end are queued in the stream); then it is handed to
// the stream ("queued"), where it rides the queue between frames, and the
// pacer reports it when the frame before it is on the wire. Text sent
// before the mark but not yet triggered (no flush or try_trigger) holds the
// mark until the next trigger's generation ends; a mark behind text that is
// never triggered is answered cleared at the next clear.
//
// Answers leave in fifo order: a resolved mark waits for those before it.
type markState struct {
	// seq serializes handing marks to the stream; it is held across
	// Stream.Mark, which may wait for room in the queue (never on the
	// network). mu is never held while waiting.
	seq sync.Mutex

	mu sync.Mutex
	// The following fields are guarded by mu.
	trigs uint64 // generations triggered since the last clear
	ends  uint64 // generation ends queued since the last clear
	fifo  []pendingMark
}

type markStatus int

const (
	markHeld     markStatus = iota // waiting for generations to end
	markQueued                     // in the stream's queue
	markResolved                   // answered, waiting for the marks before it
)

type pendingMark struct {
	name    string
	need    uint64 // generation ends it waits for
	status  markStatus
	cleared bool
}

// markEvent is the answer to a bot's mark.
type markEvent struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Cleared bool   `json:"cleared"`
}

// mark registers a bot's mark (see markState).
func (c *Session) mark(name string) error {
	if len(name) == 0 || len(name) > maxMarkName {
		return fmt.Errorf("%w: mark name must be 1 to %d bytes", ErrInvalidField, maxMarkName)
	}
	c.textMu.Lock()
	defer c.textMu.Unlock()
	m := &c.marks
	m.mu.Lock()
	if len(m.fifo) >= maxPendingMarks {
		m.mu.Unlock()
		return fmt.Errorf("%w: %d marks are waiting (limit %d); wait for their answers", ErrInvalidField, len(m.fifo), maxPendingMarks)
	}
	need := m.trigs
	if c.untriggered > 0 {
		need++ // the text before it is spoken by the next trigger
	}
	m.fifo = append(m.fifo, pendingMark{name: name, need: need})
	m.mu.Unlock()
	c.releaseMarks()
	return nil
}

// markTriggered counts a triggered generation. Called by speak, under textMu.
func (c *Session) markTriggered() {
	c.marks.mu.Lock()
	c.marks.trigs++
	c.marks.mu.Unlock()
}

// markGenerationEnded counts a generation end queued in the stream and
// releases the marks behind it. Called on the TTS client's goroutine.
func (c *Session) markGenerationEnded() {
	c.marks.mu.Lock()
	c.marks.ends++
	c.marks.mu.Unlock()
	c.releaseMarks()
}

// releaseMarks hands the held marks whose generations have all ended to the
// stream, in order.
func (c *Session) releaseMarks() {
	m := &c.marks
	m.seq.Lock()
	defer m.seq.Unlock()
	for {
		m.mu.Lock()
		i := 0
		for i < len(m.fifo) && m.fifo[i].status != markHeld {
			i++
		}
		if i == len(m.fifo) || m.fifo[i].need > m.ends {
			m.mu.Unlock()
			return
		}
		m.fifo[i].status = markQueued // before Mark: the pacer may answer it at once
		name := m.fifo[i].name
		m.mu.Unlock()
		if err := c.stream.Mark(c.play.gate.get(c.ctx), name); err != nil {
			// A clear cut the wait for room (or the call ends): the audio
			// before it was dropped.
			// It is the last queued mark (seq is held), whatever the
			// pacer answered meanwhile.
			m.mu.Lock()
			for j := len(m.fifo) - 1; j >= 0; j-- {
				if m.fifo[j].status == markQueued {
					m.fifo[j].status, m.fifo[j].cleared = markResolved, true
					break
				}
			}
			c.answerMarks()
			m.mu.Unlock()
		}
	}
}

// markStreamEvent resolves the oldest queued mark. Runs on the pacer
// goroutine; never blocks.
func (c *Session) markStreamEvent(e media.Event) {
	m := &c.marks
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.fifo {
		if m.fifo[i].status == markQueued {
			m.fifo[i].status, m.fifo[i].cleared = markResolved, e.Cleared
			break
		}
	}
	c.answerMarks()
}

// clearMarks answers the held marks as cleared and restarts the counts.
// Called by clear, under textMu, after the TTS client and the stream were
// cleared: no generation of text sent before ends after this.
func (c *Session) clearMarks() {
	m := &c.marks
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trigs, m.ends = 0, 0
	for i := range m.fifo {
		if m.fifo[i].status == markHeld {
			m.fifo[i].status, m.fifo[i].cleared = markResolved, true
		}
	}
	c.answerMarks()
}

// answerMarks sends the resolved marks at the head of fifo. Called with
// marks.mu held; broadcast only queues.
func (c *Session) answerMarks() {
	m := &c.marks
	n := 0
	for n < len(m.fifo) && m.fifo[n].status == markResolved {
		b, _ := json.Marshal(markEvent{Type: "mark", Name: m.fifo[n].name, Cleared: m.fifo[n].cleared})
		c.broadcast(b)
		n++
	}
	if n > 0 {
		m.fifo = append(m.fifo[:0], m.fifo[n:]...)
	}
}
