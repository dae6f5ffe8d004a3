package plainrtp

import "github.com/zaf/g711"

// G.711 payload types (RFC 3551 §6).
const (
	PayloadPCMU = 0
	PayloadPCMA = 8
)

// FrameSamples is one 20 ms G.711 frame at 8 kHz: 160 samples, 160 bytes,
// and the RTP timestamp step.
const FrameSamples = 160

// EncodeG711 encodes pcm (PCM16 at 8 kHz) into dst as PCMU (law
// PayloadPCMU) or PCMA (PayloadPCMA), one byte per sample, and returns the
// bytes written: min(len(pcm), len(dst)). It allocates nothing.
func EncodeG711(dst []byte, pcm []int16, law uint8) int {
	n := min(len(pcm), len(dst))
	if law == PayloadPCMA {
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
func DecodeG711(dst []int16, payload []byte, law uint8) int {
	n := min(len(payload), len(dst))
	if law == PayloadPCMA {
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
	silencePCMU = silence(PayloadPCMU)
	silencePCMA = silence(PayloadPCMA)
)

func silence(law uint8) []byte {
	b := make([]byte, FrameSamples)
	EncodeG711(b, make([]int16, FrameSamples), law)
	return b
}

// SilencePayload is a precomputed 20 ms G.711 silence frame for law
// (PayloadPCMU or PayloadPCMA). Shared: do not modify it.
func SilencePayload(law uint8) []byte {
	if law == PayloadPCMA {
		return silencePCMA
	}
	return silencePCMU
}
