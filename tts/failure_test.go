package tts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// textLog records the text messages a server receives, in order.
type textLog struct {
	mu    sync.Mutex
	texts []string
}

func (l *textLog) onMessage(_ tts.Dialect, msg []byte) {
	var m struct{ Type, Text string }
	_ = json.Unmarshal(msg, &m)
	if m.Type == "text" {
		l.mu.Lock()
		l.texts = append(l.texts, m.Text)
		l.mu.Unlock()
	}
}

func (l *textLog) joined() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.texts, "|")
}

// TestConnectionLossPolicy is the contract's "When the TTS connection
// fails": three generations are triggered at once; the connection drops in
// the middle of the second. The first was spoken whole; the second, cut
// after some of its audio was delivered, is not sent again and comes back
// as EventInterrupted with its text byte for byte; the third, not started,
// is sent again and spoken once, as is text sent during the outage. Every
// generation gets exactly one GenerationEnd.
func TestConnectionLossPolicy(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectFaseeh, tts.DialectMunsit} {
		t.Run(string(d), func(t *testing.T) {
			var log textLog
			// 100 ms chunks: "500" is 2 chunks; the drop comes before the
			// 5th chunk of the connection, the 3rd of the second generation.
			rs := startServer(t, ttsserver.ServerConfig{
				MunsitIsFinal: true,
				Faults:        ttsserver.Faults{DropAfterChunks: 4, Times: 1},
				OnMessage:     log.onMessage,
			})
			rec := newRecorder()
			cfg := clientConfig(rs, d)
			cfg.VoiceID = ttsserver.TestTonesVoice
			cfg.RedialBackoff = time.Millisecond
			cfg.QuietPeriod = guard // ends come from isFinal (or the cut) only
			c := dial(t, cfg, rec)
			ctx := context.Background()
			for _, m := range []struct {
				text  string
				flush bool
			}{{"500", true}, {"600 700 ", false}, {"800 900 1000", true}, {"1100", true}} {
				if err := c.SendText(ctx, m.text, m.flush, false); err != nil {
					t.Fatal(err)
				}
			}
			rec.waitEvent(t, tts.EventDisconnected)
			ev := rec.waitEvent(t, tts.EventInterrupted)
			if ev.Text != "600 700 800 900 1000" {
				t.Fatalf("interrupted text %q, want the second generation's, byte for byte", ev.Text)
			}
			if err := c.SendText(ctx, "1200", true, false); err != nil {
				t.Fatal(err)
			}
			for range 4 {
				rec.waitEnd(t)
			}
			want := "500|600 700 |800 900 1000|1100|1100|1200"
			if got := log.joined(); got != want {
				t.Fatalf("server got texts %q, want %q", got, want)
			}
			pcm, _, ends := rec.snapshot()
			if ends != 4 {
				t.Fatalf("%d GenerationEnds, want 4", ends)
			}
			var tail []byte
			for _, w := range []string{"1100", "1200"} {
				p, err := rs.Synthesize(ctx, w, ttsserver.TestTonesVoice, 24000, 1)
				if err != nil {
					t.Fatal(err)
				}
				tail = append(tail, p...)
			}
			first, _ := rs.Synthesize(ctx, "500", ttsserver.TestTonesVoice, 24000, 1)
			if !bytes.HasPrefix(pcm, first) || !bytes.HasSuffix(pcm, tail) {
				t.Fatalf("audio: %d bytes; want the first generation whole, then after the cut exactly the third and the fourth", len(pcm))
			}
			cut := len(pcm) - len(first) - len(tail)
			if cut <= 0 || cut >= ttsserver.ToneSamples(24000, 1)*2*5 {
				t.Fatalf("%d bytes of the cut generation delivered, want some but not all", cut)
			}
		})
	}
}
