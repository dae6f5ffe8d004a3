package ttsserver

import (
	"strconv"
	"testing"

	"github.com/voicebridge/voicebridge/tts"
)

// BenchmarkServerAudioMsg is the embedded server's per-chunk encoding.
func BenchmarkServerAudioMsg(b *testing.B) {
	ss := &session{d: tts.DialectMunsit}
	pcm := make([]byte, 4800)
	b.SetBytes(int64(len(pcm)))
	b.ReportAllocs()
	for b.Loop() {
		_ = ss.audioMsg(pcm, 24000, false)
	}
}

// BenchmarkResample is the server's rate conversion of 1 s of espeak-ng
// output (paid once per text, voice and rate thanks to the cache).
func BenchmarkResample(b *testing.B) {
	in := make([]int16, espeakRate)
	for i := range in {
		in[i] = int16(i * 7)
	}
	for _, out := range []int{8000, 16000, 24000} {
		b.Run(strconv.Itoa(out), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = resamplePCM(in, espeakRate, out)
			}
		})
	}
}
