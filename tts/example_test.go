package tts_test

import (
	"context"
	"fmt"

	"github.com/voicebridge/voicebridge/tts"
)

// Start an embedded TTS on a loopback port and speak one sentence through
// the client, in the munsit dialect.
func Example() {
	ctx := context.Background()
	srv, err := tts.Start(ctx, "127.0.0.1:0", tts.ServerConfig{MunsitIsFinal: true})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	done := make(chan struct{})
	var samples int
	h := tts.HandlerFuncs{
		AudioFunc:         func(pcm []byte, sampleRate int) { samples += len(pcm) / 2 },
		GenerationEndFunc: func() { close(done) },
	}
	c, err := tts.Dial(ctx, tts.ClientConfig{
		URL:          srv.URL(tts.DialectMunsit),
		VoiceID:      "ar-najdi-male-2",
		OutputFormat: "pcm_16000",
	}, h)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.SendText(ctx, "مرحبا بك في فصيح", true, false); err != nil {
		panic(err)
	}
	<-done
	fmt.Println("spoke", samples > 16000/2, "at 16 kHz")
	// Output: spoke true at 16 kHz
}
