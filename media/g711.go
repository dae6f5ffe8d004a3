package media

import (
	"fmt"

	"github.com/zaf/g711"
)

// Codec is what a Stream sends: Opus (RFC 7587) or G.711 (RFC 3551 §4.5.14).
type Codec int

// Codecs. The zero value is Opus.
const (
	CodecOpus Codec = iota // Opus, 48 kHz clock, 960-sample (20 ms) frames
	CodecPCMU              // G.711 µ-law, 8 kHz, 160-sample frames, payload type 0
	CodecPCMA              // G.711 A-law, 8 kHz, 160-sample frames, payload type 8
)

// G.711 wire constants (RFC 3551 §6).
const (
	G711SampleRate   = 8000
	G711FrameSamples = 160 // 20 ms at 8 kHz: also the bytes per packet and the RTP timestamp step
	PayloadTypePCMU  = 0
	PayloadTypePCMA  = 8
)

func (c Codec) String() string {
	switch c {
	case CodecOpus:
		return "opus"
	case CodecPCMU:
		return "pcmu"
	case CodecPCMA:
		return "pcma"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

// ParseCodec parses "opus", "pcmu" or "pcma".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "opus":
		return CodecOpus, nil
	case "pcmu":
		return CodecPCMU, nil
	case "pcma":
		return CodecPCMA, nil
	}
	return 0, fmt.Errorf("%w: codec %q (want opus, pcmu or pcma)", ErrInvalidConfig, s)
}

// ClockRate is the codec's RTP clock rate and the rate of the audio the
// stream queues and encodes: 48000 for Opus, 8000 for G.711.
func (c Codec) ClockRate() int {
	if c.IsG711() {
		return G711SampleRate
	}
	return SampleRate
}

// FrameSamples is one 20 ms frame at ClockRate: the RTP timestamp step.
func (c Codec) FrameSamples() int {
	if c.IsG711() {
		return G711FrameSamples
	}
	return FrameSamples
}

// PayloadType is the codec's usual payload type (static for G.711; 111 for
// Opus, the common dynamic choice). The negotiated one may differ: the
// PacketWriter sets it.
func (c Codec) PayloadType() uint8 {
	switch c {
	case CodecPCMU:
		return PayloadTypePCMU
	case CodecPCMA:
		return PayloadTypePCMA
	}
	return 111
}

// IsG711 reports PCMU or PCMA.
func (c Codec) IsG711() bool { return c == CodecPCMU || c == CodecPCMA }

func (c Codec) valid() bool { return c >= CodecOpus && c <= CodecPCMA }

// EncodeG711 encodes pcm (PCM16 at 8 kHz) into dst as PCMU or PCMA (c), one
// byte per sample, and returns the bytes written: min(len(pcm), len(dst)).
// It allocates nothing.
func EncodeG711(dst []byte, pcm []int16, c Codec) int {
	n := min(len(pcm), len(dst))
	if c == CodecPCMA {
		for i := range n {
			dst[i] = g711.EncodeAlawFrame(pcm[i])
		}
		return n
	}
	for i := range n {
		dst[i] = g711.EncodeUlawFrame(pcm[i])
	}
	return n
}

// DecodeG711 decodes a PCMU or PCMA payload into dst (PCM16 at 8 kHz) and
// returns the samples written: min(len(payload), len(dst)).
func DecodeG711(dst []int16, payload []byte, c Codec) int {
	n := min(len(payload), len(dst))
	if c == CodecPCMA {
		for i := range n {
			dst[i] = g711.DecodeAlawFrame(payload[i])
		}
		return n
	}
	for i := range n {
		dst[i] = g711.DecodeUlawFrame(payload[i])
	}
	return n
}

var (
	silencePCMU = g711Silence(CodecPCMU)
	silencePCMA = g711Silence(CodecPCMA)
)

func g711Silence(c Codec) []byte {
	b := make([]byte, G711FrameSamples)
	EncodeG711(b, make([]int16, G711FrameSamples), c)
	return b
}

// G711Silence is a precomputed 20 ms silence payload of c (PCMU or PCMA).
// Shared: do not modify it.
func G711Silence(c Codec) []byte {
	if c == CodecPCMA {
		return silencePCMA
	}
	return silencePCMU
}

// g711Encoder is the Stream's Encoder for a G.711 codec: stateless, no
// lookahead, no allocation.
type g711Encoder struct{ c Codec }

func (e g711Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(out) < len(pcm) {
		return 0, fmt.Errorf("media: g711: %d bytes of room for %d samples", len(out), len(pcm))
	}
	return EncodeG711(out, pcm, e.c), nil
}
func (g711Encoder) Reset() error   { return nil }
func (g711Encoder) Lookahead() int { return 0 }
func (g711Encoder) Close() error   { return nil }
