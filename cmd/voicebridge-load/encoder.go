package main

import "github.com/zaf/resample"

// bridgeEncoder returns the Opus settings voicebridge encodes with by
// default, for the peers to match.
func bridgeEncoder() encSettings {
	return encSettings{
		App: "voip", Bitrate: 32000, Complexity: 10, VBR: true, InRate: 24000,
		SoxrQ: resample.HighQ, SoxrBits: 20,
		Source: "assumed (media defaults not merged yet)",
	}
}
