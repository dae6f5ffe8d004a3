package media

import (
	"errors"
	"fmt"
)

// Decoder decodes the caller's Opus packets (RFC 7587) to mono PCM16 at its
// own output rate: libopus decodes straight to 8, 12, 16, 24 or 48 kHz, so a
// bot listening at 16 kHz costs no resampler. It is used from one goroutine
// (the call's receive loop); no method allocates.
//
// pcm slices are owned by the caller and not retained. The number of samples
// a concealment produces is len(pcm), which must be a multiple of 2.5 ms at
// the decoder's rate.
type Decoder interface {
	// Decode decodes one packet into pcm (room for 120 ms is always enough)
	// and returns the samples written.
	Decode(packet []byte, pcm []int16) (int, error)
	// DecodeFEC fills pcm with the frame before packet, recovered from the
	// in-band FEC data packet carries (RFC 6716 §2.1.7); a packet without
	// FEC data gives packet-loss concealment instead.
	DecodeFEC(packet []byte, pcm []int16) error
	// DecodePLC fills pcm with packet-loss concealment.
	DecodePLC(pcm []int16) error
	// SampleRate is the output rate in Hz.
	SampleRate() int
}

// NewDecoder returns a libopus decoder producing mono PCM at rate (8000,
// 12000, 16000, 24000 or 48000). Without cgo it returns ErrCodecUnavailable.
func NewDecoder(rate int) (Decoder, error) {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
	default:
		return nil, fmt.Errorf("%w: opus decodes to 8000, 12000, 16000, 24000 or 48000 Hz, not %d", ErrUnsupportedRate, rate)
	}
	return newOpusDecoder(rate)
}

// ErrBadPacket is returned by OpusPacketSamples for a packet whose TOC
// (RFC 6716 §3.1) is missing or malformed.
var ErrBadPacket = errors.New("media: malformed opus packet")

// opusFrameSamples48 is the frame size at 48 kHz of each TOC configuration
// (RFC 6716 §3.1, Table 2): SILK-only 10/20/40/60 ms, hybrid 10/20 ms, CELT
// 2.5/5/10/20 ms.
var opusFrameSamples48 = [32]int{
	480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880, // SILK NB, MB, WB
	480, 960, 480, 960, // hybrid SWB, FB
	120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, // CELT NB..FB
}

// OpusPacketSamples returns the duration of an Opus packet in 48 kHz
// samples, read from its TOC byte and, for code 3, its frame count byte
// (RFC 6716 §3.2). Pure Go, no allocation.
func OpusPacketSamples(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrBadPacket)
	}
	per := opusFrameSamples48[p[0]>>3]
	var frames int
	switch p[0] & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, fmt.Errorf("%w: code 3 without a frame count", ErrBadPacket)
		}
		frames = int(p[1] & 0x3f)
		if frames == 0 {
			return 0, fmt.Errorf("%w: zero frames", ErrBadPacket)
		}
	}
	n := per * frames
	if n > 5760 { // 120 ms, RFC 6716 §3.2.5
		return 0, fmt.Errorf("%w: %d samples is over 120 ms", ErrBadPacket, n)
	}
	return n, nil
}
