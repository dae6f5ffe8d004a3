package tts

import "fmt"

// Handler receives everything a Client reads. Its methods are called from
// one goroutine owned by the Client, in wire order, never concurrently.
// They must not call the Client's Clear or Close (SendText is fine), nor
// wait for anything that waits for Clear: Clear waits for an Audio,
// GenerationEnd or EventInterrupted call in progress.
type Handler interface {
	// Audio delivers whole little-endian PCM16 mono samples (a dangling
	// odd byte is carried to the next chunk of the same rate) at the
	// chunk's own sampleRate. pcm is valid only during the call. Audio may
	// block (back-pressure): the client's read deadline only runs while it
	// waits for the network, so a slow Handler does not drop the
	// connection. After Clear returns, no audio of text sent before the
	// Clear is delivered.
	Audio(pcm []byte, sampleRate int)
	// GenerationEnd reports that a flushed or triggered generation ended:
	// an isFinal chunk, or, inferred, no audio for a while after it (see
	// ClientConfig.QuietPeriod) or none at all (FirstAudioTimeout), or a
	// lost connection that cut it (after EventInterrupted). Called exactly
	// once per generation, in the order they were triggered; when the end
	// is inferred, generations that ran back to back end together (one
	// call each, back to back). Not called for a generation that Clear
	// interrupted.
	GenerationEnd()
	// Event reports service errors, a lost connection, a generation it
	// cut, a recovery, and a redial given up.
	Event(Event)
}

// HandlerFuncs adapts functions to a Handler; nil functions are skipped.
type HandlerFuncs struct {
	AudioFunc         func(pcm []byte, sampleRate int)
	GenerationEndFunc func()
	EventFunc         func(Event)
}

var _ Handler = HandlerFuncs{}

// Audio calls AudioFunc if it is set.
func (h HandlerFuncs) Audio(pcm []byte, sampleRate int) {
	if h.AudioFunc != nil {
		h.AudioFunc(pcm, sampleRate)
	}
}

// GenerationEnd calls GenerationEndFunc if it is set.
func (h HandlerFuncs) GenerationEnd() {
	if h.GenerationEndFunc != nil {
		h.GenerationEndFunc()
	}
}

// Event calls EventFunc if it is set.
func (h HandlerFuncs) Event(e Event) {
	if h.EventFunc != nil {
		h.EventFunc(e)
	}
}

// EventKind tells what an Event reports.
type EventKind int

const (
	// EventError: the service sent an error message, or broke the
	// protocol. Err is a *Error.
	EventError EventKind = iota + 1
	// EventDisconnected: the connection was lost; the client redials.
	// Err says why.
	EventDisconnected
	// EventReconnected: a redial succeeded and the text not yet spoken was
	// sent again. Err is nil.
	EventReconnected
	// EventRedialFailed: the redials of this outage all failed (Err is the
	// last failure). Text sent meanwhile is kept; the next SendText starts
	// a new round of redials.
	EventRedialFailed
	// EventInterrupted: a lost connection cut a generation after some of
	// its audio was delivered. It is not spoken again (the caller heard its
	// start); Text is that generation's text, byte for byte as given to
	// SendText (its messages concatenated), for the caller to re-send or
	// not. It follows the EventDisconnected of the same loss; the
	// generation's GenerationEnd follows it.
	EventInterrupted
)

// String returns "error", "disconnected", "reconnected", "redial_failed"
// or "interrupted".
func (k EventKind) String() string {
	switch k {
	case EventError:
		return "error"
	case EventDisconnected:
		return "disconnected"
	case EventReconnected:
		return "reconnected"
	case EventRedialFailed:
		return "redial_failed"
	case EventInterrupted:
		return "interrupted"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is reported through Handler.Event.
type Event struct {
	Kind EventKind
	Err  error
	// Text is the cut generation's text (EventInterrupted only).
	Text string
}

// String is for logs and test failures.
func (e Event) String() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Kind.String() + ": " + e.Err.Error()
}
