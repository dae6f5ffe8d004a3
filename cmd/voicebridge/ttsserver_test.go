package main

import (
	"io"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// TestTTSServerKnobs: the embedded TTS's delivery and fault knobs, from
// flags and environment, and their refusals.
func TestTTSServerKnobs(t *testing.T) {
	o, err := parseTTSServer([]string{"-pace", "1.25", "-chunk", "60ms", "-first-chunk", "40ms", "-reader-pongs"},
		env(map[string]string{"VOICEBRIDGE_TTS_SERVER_CLEAR_LAG": "150ms", "VOICEBRIDGE_TTS_SERVER_MUNSIT_ISFINAL": "true"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sc := o.server
	if sc.Pace != 1.25 || sc.ChunkDuration != 60*time.Millisecond || sc.FirstChunkDuration != 40*time.Millisecond ||
		!sc.Faults.ReaderPongs || sc.Faults.ClearLag != 150*time.Millisecond || !sc.MunsitIsFinal {
		t.Errorf("%+v", sc)
	}
	o, err = parseTTSServer(nil, env(nil), io.Discard)
	if err != nil || o.server.Pace != ttsserver.DefaultPace || o.server.ChunkDuration != ttsserver.DefaultChunkDuration ||
		o.server.FirstChunkDelay != ttsserver.DefaultFirstChunkDelay || o.server.Faults != (ttsserver.Faults{}) {
		t.Errorf("defaults: %+v %v", o.server, err)
	}
	for _, args := range [][]string{{"-pace", "0"}, {"-pace", "-2"}, {"-chunk", "0s"}, {"-first-chunk", "-1ms"}, {"-clear-lag", "-1s"}} {
		if _, err := parseTTSServer(args, env(nil), io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
