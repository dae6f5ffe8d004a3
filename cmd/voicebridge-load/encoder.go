package main

import "github.com/zaf/resample"

// bridgeEncoder returns the Opus and resampler settings voicebridge encodes
// with by default, for the peers to match.
func bridgeEncoder() encSettings {
	return encSettings{
		App: "audio", Bitrate: 32000, Complexity: 5, VBR: "constrained", InRate: 24000,
		SoxrQ: resample.MediumQ, SoxrBits: 16,
		Source: "voicebridge defaults (media package, as designed; not merged yet)",
	}
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
