package tts_test

import (
	"context"
	"fmt"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// Start an embedded TTS on a loopback port and speak one sentence through
// the client, in the faseeh dialect.
func Example() {
	ctx := context.Background()
	srv, err := ttsserver.Start(ctx, "127.0.0.1:0", ttsserver.ServerConfig{})
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
		URL:     srv.URL(tts.DialectFaseeh),
		ModelID: "faseeh-v1-preview",
		VoiceID: "ar-najdi-male-2",
	}, h)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.SendText(ctx, "مرحبا بك في فصيح", true, false); err != nil {
		panic(err)
	}
	<-done
	fmt.Println("spoke", samples > 24000/2, "at 24 kHz")
	// Output: spoke true at 24 kHz
}
