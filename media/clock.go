package media

import (
	"fmt"
	"io"
	"time"
)

// Clock is the pacer's source of time: a test seam. The real clock is
// time.Now and time.NewTimer (monotonic).
type Clock interface {
	Now() time.Time
	// NewTimer returns a stopped-or-running timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the subset of *time.Timer the pacer uses.
type Timer interface {
	C() <-chan time.Time
	// Reset re-arms the timer to fire after d (Go 1.23 semantics: no stale
	// value is received after Reset).
	Reset(d time.Duration) bool
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
func (t realTimer) Stop() bool                 { return t.t.Stop() }

// Option configures a Stream beyond StreamConfig. Options are test seams
// (clock, codec factories), in the style of pion/interceptor.
type Option func(*Stream) error

// WithClock makes the pacer read time and wait on c instead of the wall clock.
func WithClock(c Clock) Option {
	return func(s *Stream) error {
		if c == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidConfig)
		}
		s.clock = c
		return nil
	}
}

// EncoderFactory builds the stream's encoder; NewEncoder is the default.
type EncoderFactory func(EncoderConfig) (Encoder, error)

// WithEncoderFactory replaces libopus, e.g. with a fake that writes the frame
// index so that pacer tests run without cgo.
func WithEncoderFactory(f EncoderFactory) Option {
	return func(s *Stream) error {
		if f == nil {
			return fmt.Errorf("%w: nil encoder factory", ErrInvalidConfig)
		}
		s.newEncoder = f
		return nil
	}
}

// ResamplerFactory builds a resampler from inRate to outRate (the stream
// codec's clock rate) writing to dst; NewResamplerTo is the default.
type ResamplerFactory func(dst io.Writer, inRate, outRate int, q ResamplerQuality) (Resampler, error)

// WithResamplerFactory replaces libsoxr.
func WithResamplerFactory(f ResamplerFactory) Option {
	return func(s *Stream) error {
		if f == nil {
			return fmt.Errorf("%w: nil resampler factory", ErrInvalidConfig)
		}
		s.newResampler = f
		return nil
	}
}

// WithScheduler paces the stream on sc instead of the process's default
// scheduler (only with the real clock).
func WithScheduler(sc *Scheduler) Option {
	return func(s *Stream) error {
		if sc == nil {
			return fmt.Errorf("%w: nil scheduler", ErrInvalidConfig)
		}
		s.scheduler = sc
		return nil
	}
}
