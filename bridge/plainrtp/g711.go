package plainrtp

import "github.com/voicebridge/voicebridge/media"

// G.711 payload types (RFC 3551 §6).
const (
	PayloadPCMU = media.PayloadTypePCMU
	PayloadPCMA = media.PayloadTypePCMA
)

// FrameSamples is one 20 ms G.711 frame at 8 kHz: 160 samples, 160 bytes,
// and the RTP timestamp step.
const FrameSamples = media.G711FrameSamples

// lawCodec maps a payload type to media's codec (PCMA for 8, else PCMU).
func lawCodec(law uint8) media.Codec {
	if law == PayloadPCMA {
		return media.CodecPCMA
	}
	return media.CodecPCMU
}

// EncodeG711 encodes pcm (PCM16 at 8 kHz) into dst as PCMU (law
// PayloadPCMU) or PCMA (PayloadPCMA), one byte per sample, and returns the
// bytes written: min(len(pcm), len(dst)). It allocates nothing. (The codec
// lives in media, which the calls' Streams use too.)
func EncodeG711(dst []byte, pcm []int16, law uint8) int {
	return media.EncodeG711(dst, pcm, lawCodec(law))
}

// DecodeG711 decodes a PCMU or PCMA payload into dst (PCM16 at 8 kHz) and
// returns the samples written: min(len(payload), len(dst)).
func DecodeG711(dst []int16, payload []byte, law uint8) int {
	return media.DecodeG711(dst, payload, lawCodec(law))
}

// SilencePayload is a precomputed 20 ms G.711 silence frame for law
// (PayloadPCMU or PayloadPCMA). Shared: do not modify it.
func SilencePayload(law uint8) []byte { return media.G711Silence(lawCodec(law)) }
