//go:build !cgo

package media

func newOpusDecoder(int) (Decoder, error) { return nil, ErrCodecUnavailable }
