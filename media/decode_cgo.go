//go:build cgo

package media

import "github.com/hraban/opus"

// opusDecoder wraps hraban/opus. hraban/opus takes the frame size of FEC
// and PLC from cap(pcm), so those pass a slice capped at its length.
type opusDecoder struct {
	dec  *opus.Decoder
	rate int
}

func newOpusDecoder(rate int) (Decoder, error) {
	dec, err := opus.NewDecoder(rate, 1)
	if err != nil {
		return nil, wrapCodec("opus decoder", err)
	}
	return &opusDecoder{dec: dec, rate: rate}, nil
}

func (d *opusDecoder) Decode(packet []byte, pcm []int16) (int, error) {
	return d.dec.Decode(packet, pcm)
}

func (d *opusDecoder) DecodeFEC(packet []byte, pcm []int16) error {
	return d.dec.DecodeFEC(packet, pcm[:len(pcm):len(pcm)])
}

func (d *opusDecoder) DecodePLC(pcm []int16) error {
	return d.dec.DecodePLC(pcm[:len(pcm):len(pcm)])
}

func (d *opusDecoder) SampleRate() int { return d.rate }
