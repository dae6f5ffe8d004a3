package tts

import (
	"encoding/base64"
	"strconv"
	"testing"
	"time"
)

// BenchmarkClientAudioPath is the client's per-chunk work once a message
// has been read: JSON decode, base64 into the reused buffer, odd-byte
// carry, delivery to the Handler, quiet-period timer. A 100 ms chunk at
// 24 kHz, with an odd length so that the carry path runs every time.
func BenchmarkClientAudioPath(b *testing.B) {
	pcm := make([]byte, 4801)
	for i := range pcm {
		pcm[i] = byte(i)
	}
	msg := []byte(`{"audio":"` + base64.StdEncoding.EncodeToString(pcm) + `","sampleRate":24000,"isFinal":false}`)
	var delivered int
	c := &Client{
		cfg:     ClientConfig{QuietPeriod: time.Hour, FirstAudioTimeout: time.Hour}.withDefaults(),
		d:       faseehDialect{},
		h:       HandlerFuncs{AudioFunc: func(p []byte, _ int) { delivered += len(p) }},
		deliver: make(chan struct{}, 1),
	}
	c.outstanding = 1
	conn := &wsConn{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	f := new(frame)
	b.SetBytes(int64(len(pcm)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := decodeServerMessage(DialectFaseeh, msg, f); err != nil {
			b.Fatal(err)
		}
		c.handle(conn, f, timer)
	}
	if delivered == 0 {
		b.Fatal("nothing delivered")
	}
}

// BenchmarkServerAudioMsg is the embedded server's per-chunk encoding.
func BenchmarkServerAudioMsg(b *testing.B) {
	ss := &session{d: DialectMunsit}
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
