package main

import (
	"strconv"
	"strings"

	"github.com/voicebridge/voicebridge/bridge"
	"github.com/voicebridge/voicebridge/media"
	"github.com/zaf/resample"
)

// bridgeEncoder returns the Opus and resampler settings voicebridge encodes
// with by default, read from the packages themselves, for the peers to
// match. VBR is libopus' default (constrained), which media leaves alone.
func bridgeEncoder() encSettings {
	e := media.DefaultEncoderConfig
	q, bits := soxrFor(media.DefaultResamplerQuality)
	rate, err := strconv.Atoi(strings.TrimPrefix(bridge.DefaultTTSFormat, "pcm_"))
	if err != nil {
		rate = 24000
	}
	return encSettings{
		App: e.Application.String(), Bitrate: e.Bitrate, Complexity: e.Complexity, VBR: "constrained",
		FEC: e.FEC, LossPct: e.PacketLossPercent, DTX: e.DTX, InRate: rate, SoxrQ: q, SoxrBits: bits,
		Source: "voicebridge's defaults (media.DefaultEncoderConfig, media.DefaultResamplerQuality, bridge.DefaultTTSFormat)",
	}
}

// soxrFor maps media's resampler quality to zaf/resample's constant and to
// the nearest precision ffmpeg's aresample can ask soxr for (15–33 bits:
// soxr's 16-bit recipe stands in for its low and medium ones).
func soxrFor(q media.ResamplerQuality) (quality, bits int) {
	switch q {
	case media.ResampleQuick:
		return resample.Quick, 15
	case media.ResampleLow:
		return resample.LowQ, 16
	case media.ResampleHigh:
		return resample.HighQ, 20
	case media.ResampleVeryHigh:
		return resample.VeryHighQ, 28
	}
	return resample.MediumQ, 16
}

// referenceEncoder is the setting the issue quotes for the peers (~0.018
// CPU-s per audio-s on this machine): VoIP, 32 kbit/s, complexity 10.
func referenceEncoder() encSettings {
	return encSettings{
		App: "voip", Bitrate: 32000, Complexity: 10, VBR: "constrained", InRate: 24000,
		SoxrQ: resample.HighQ, SoxrBits: 20,
		Source: "the issue's reference setting",
	}
}
