package media

import (
	"errors"
	"fmt"
)

// Errors returned by package media. Callers compare with errors.Is; some are
// wrapped with detail (for example the offending sample rate).
var (
	// ErrUnsupportedRate is returned by Write for a sample rate other than
	// 8000, 16000, 22050 or 24000 Hz.
	ErrUnsupportedRate = errors.New("media: unsupported sample rate")
	// ErrCleared is returned by Write or EndGeneration when Clear ran while
	// they were in progress; the rest of their audio was discarded.
	ErrCleared = errors.New("media: cleared")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("media: stream closed")
	// ErrRunning is returned by Run when the stream's pacer is already running
	// or has run before (Run may be called once per Stream).
	ErrRunning = errors.New("media: pacer already started")
	// ErrCodecUnavailable is returned by the codec constructors in a binary
	// built without cgo: libopus and libsoxr need it.
	ErrCodecUnavailable = errors.New("media: codec unavailable (built without cgo)")
	// ErrInvalidConfig wraps a StreamConfig or EncoderConfig field that is
	// missing or out of range.
	ErrInvalidConfig = errors.New("media: invalid config")
	// ErrInvalidDTMF is returned by SendDTMF for a digit outside
	// 0-9 * # A-D, or a duration or gap outside 40 ms..2 s.
	ErrInvalidDTMF = errors.New("media: invalid dtmf")
	// ErrDTMFQueueFull is returned by SendDTMF when the digits would not
	// fit behind those already queued (MaxQueuedDigits).
	ErrDTMFQueueFull = errors.New("media: too many dtmf digits queued")
)

func wrapCodec(what string, err error) error {
	return fmt.Errorf("media: %s: %w", what, err)
}
