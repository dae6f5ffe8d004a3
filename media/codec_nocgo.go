//go:build !cgo

package media

import "io"

func newOpusEncoder(EncoderConfig) (Encoder, error) { return nil, ErrCodecUnavailable }

func newSoxrResampler(io.Writer, int, int, ResamplerQuality) (Resampler, error) {
	return nil, ErrCodecUnavailable
}
