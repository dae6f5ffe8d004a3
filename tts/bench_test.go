package tts

import (
	"encoding/base64"
	"testing"
	"time"
)

// BenchmarkClientAudioPath is the client's per-chunk work once a message
// has been read: JSON decode, base64 into the reused buffer, odd-byte
// carry, delivery to the Handler, quiet-period timer. A 100 ms chunk at
// 24 kHz, with an odd length so that the carry path runs every time.
func BenchmarkClientAudioPath(b *testing.B) {
	benchAudioPath(b, decodeServerMessage)
}

// BenchmarkClientAudioPathEncodingJSON is the same through encoding/json
// only (what a message outside the fast path's subset costs).
func BenchmarkClientAudioPathEncodingJSON(b *testing.B) {
	benchAudioPath(b, decodeGeneral)
}

func benchAudioPath(b *testing.B, decode func(Dialect, []byte, *frame) *Error) {
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
		if err := decode(DialectFaseeh, msg, f); err != nil {
			b.Fatal(err)
		}
		c.handle(conn, f, timer)
	}
	if delivered == 0 {
		b.Fatal("nothing delivered")
	}
}
