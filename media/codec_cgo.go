//go:build cgo

package media

import (
	"io"

	"github.com/hraban/opus"
	"github.com/zaf/resample"
)

// opusEncoder wraps hraban/opus. Its memory lives on the Go heap.
type opusEncoder struct {
	enc       *opus.Encoder
	lookahead int
}

func newOpusEncoder(cfg EncoderConfig) (Encoder, error) {
	var app opus.Application
	lookahead := 312 // 2.5 ms + 4 ms delay compensation at 48 kHz (libopus OPUS_GET_LOOKAHEAD)
	switch cfg.Application {
	case AppVoIP:
		app = opus.AppVoIP
	case AppAudio:
		app = opus.AppAudio
	case AppRestrictedLowDelay:
		app = opus.AppRestrictedLowdelay
		lookahead = 120
	}
	enc, err := opus.NewEncoder(SampleRate, 1, app)
	if err != nil {
		return nil, wrapCodec("opus encoder", err)
	}
	steps := []func() error{
		func() error { return enc.SetComplexity(cfg.Complexity) },
		func() error { return enc.SetBitrate(cfg.Bitrate) },
		func() error { return enc.SetInBandFEC(cfg.FEC) },
		func() error { return enc.SetPacketLossPerc(cfg.PacketLossPercent) },
		func() error { return enc.SetDTX(cfg.DTX) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return nil, wrapCodec("opus encoder", err)
		}
	}
	return &opusEncoder{enc: enc, lookahead: lookahead}, nil
}

func (e *opusEncoder) Encode(pcm []int16, out []byte) (int, error) { return e.enc.Encode(pcm, out) }
func (e *opusEncoder) Reset() error                                { return e.enc.Reset() }
func (e *opusEncoder) Lookahead() int                              { return e.lookahead }
func (e *opusEncoder) Close() error                                { return nil }

// soxrResampler wraps zaf/resample. zaf/resample copies input and output
// through C memory on every Write (C.CBytes, C.malloc, C.GoBytes), so callers
// feed it at least 20 ms at a time.
type soxrResampler struct {
	r   *resample.Resampler
	out *switchWriter // zaf/resample's destination: dst until Close
}

// switchWriter forwards to w; Close points it at io.Discard, because every
// way out of zaf/resample (Reset, Close) flushes into the destination first.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

func newSoxrResampler(dst io.Writer, inRate, outRate int, q ResamplerQuality) (Resampler, error) {
	var quality int
	switch q {
	case ResampleQuick:
		quality = resample.Quick
	case ResampleLow:
		quality = resample.LowQ
	case ResampleMedium:
		quality = resample.MediumQ
	case ResampleHigh:
		quality = resample.HighQ
	case ResampleVeryHigh:
		quality = resample.VeryHighQ
	}
	out := &switchWriter{w: dst}
	r, err := resample.New(out, float64(inRate), float64(outRate), 1, resample.I16, quality)
	if err != nil {
		return nil, wrapCodec("soxr resampler", err)
	}
	return &soxrResampler{r: r, out: out}, nil
}

func (s *soxrResampler) Write(p []byte) (int, error) {
	if s.r == nil {
		return 0, ErrClosed
	}
	return s.r.Write(p)
}

// Flush uses zaf/resample's Reset: it flushes soxr (end of input), writes the
// tail to dst and soxr_clear()s the state for the next segment.
func (s *soxrResampler) Flush() error {
	if s.r == nil {
		return ErrClosed
	}
	return s.r.Reset(s.out)
}

// Close frees soxr. zaf/resample's Close flushes into the destination first,
// so the destination is switched to io.Discard: Close means "drop".
func (s *soxrResampler) Close() error {
	if s.r == nil {
		return nil
	}
	r := s.r
	s.r = nil
	s.out.w = io.Discard
	return r.Close()
}
