package media

import "fmt"

// g711MaxPacket is the longest G.711 packet decoded: 120 ms, the jitter
// buffer's limit too.
const g711MaxPacket = 6 * G711FrameSamples

// g711Decoder is the Decoder of a G.711 call's caller audio at a bot's
// rate: the packet decoded at 8 kHz, a lost piece concealed there
// (g711PLC), then raised to the rate by an Upsampler. G.711 has no FEC:
// DecodeFEC conceals like DecodePLC.
type g711Decoder struct {
	c    Codec
	rate int
	up   *Upsampler // nil at 8 kHz
	plc  g711PLC
	buf  [g711MaxPacket]int16
}

// NewG711Decoder returns a Decoder of PCMU or PCMA packets producing PCM16
// at rate (8000, 16000, 24000 or 48000). Pure Go: it works without cgo, and
// no method allocates.
func NewG711Decoder(c Codec, rate int) (Decoder, error) {
	if !c.IsG711() {
		return nil, fmt.Errorf("%w: %v is not G.711", ErrInvalidConfig, c)
	}
	d := &g711Decoder{c: c, rate: rate}
	switch rate {
	case G711SampleRate:
	case 16000, 24000, 48000:
		up, err := NewUpsampler(rate / G711SampleRate)
		if err != nil {
			return nil, err
		}
		d.up = up
	default:
		return nil, fmt.Errorf("%w: G.711 decodes to 8000, 16000, 24000 or 48000 Hz, not %d", ErrUnsupportedRate, rate)
	}
	return d, nil
}

// factor is the output samples per 8 kHz sample.
func (d *g711Decoder) factor() int { return d.rate / G711SampleRate }

func (d *g711Decoder) Decode(packet []byte, pcm []int16) (int, error) {
	if len(packet) == 0 || len(packet) > g711MaxPacket || len(packet)*d.factor() > len(pcm) {
		return 0, fmt.Errorf("%w: %d-byte G.711 packet, room for %d samples at %d Hz", ErrBadPacket, len(packet), len(pcm), d.rate)
	}
	x := d.buf[:DecodeG711(d.buf[:], packet, d.c)]
	d.plc.good(x)
	return d.out(x, pcm), nil
}

// DecodeFEC conceals: G.711 carries no FEC.
func (d *g711Decoder) DecodeFEC(_ []byte, pcm []int16) error { return d.DecodePLC(pcm) }

// DecodePLC fills pcm with the concealment of len(pcm) samples at the rate
// (a whole number of 8 kHz samples).
func (d *g711Decoder) DecodePLC(pcm []int16) error {
	f := d.factor()
	if len(pcm)%f != 0 || len(pcm)/f > g711MaxPacket {
		return fmt.Errorf("%w: %d samples to conceal at %d Hz", ErrBadPacket, len(pcm), d.rate)
	}
	x := d.buf[:len(pcm)/f]
	d.plc.conceal(x)
	d.out(x, pcm)
	return nil
}

// out writes x (8 kHz) to pcm at the rate.
func (d *g711Decoder) out(x, pcm []int16) int {
	if d.up == nil {
		return copy(pcm, x)
	}
	return d.up.Run(x, pcm)
}

func (d *g711Decoder) SampleRate() int { return d.rate }
