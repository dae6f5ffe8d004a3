package bridge

import (
	"testing"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// TestWireConnectionLoss: the TTS connection drops in the middle of a
// generation the caller is hearing. The bot gets tts_disconnected, then
// tts_interrupted with the generation's text byte for byte; on the wire the
// cut generation is never heard again from its start (its first word's
// tone is in one talkspurt only), its delivered part ends with a done, and
// text sent afterwards is spoken whole.
func TestWireConnectionLoss(t *testing.T) {
	freqs := []float64{600, 900, 1200, 1500, 1800, 2100, 2700}
	for _, d := range []tts.Dialect{tts.DialectMunsit, tts.DialectFaseeh} {
		t.Run(string(d), func(t *testing.T) {
			// 100 ms chunks at 2× real time: the drop comes 400 ms into the
			// six-word (1.2 s) generation.
			wc := newWireCall(t, d, ttsserver.ServerConfig{Faults: ttsserver.Faults{DropAfterChunks: 4, Times: 1}}, freqs)
			start := wc.rx.len()
			cut := "600 900 " + "1200 1500 1800 2100"
			wc.bt.send(t, map[string]any{"type": "text", "text": "600 900 "})
			wc.bt.send(t, map[string]any{"type": "text", "text": "1200 1500 1800 2100", "flush": true})
			var interrupted map[string]any
			speaking, done := 0, 0
			for interrupted == nil || done < 1 {
				ev := wc.bt.next(t)
				switch {
				case ev["type"] == "speaking":
					speaking++
				case ev["type"] == "done":
					done++
				case ev["type"] == "error" && ev["code"] == "tts_interrupted":
					interrupted = ev
				case ev["type"] == "error" && ev["code"] == "tts_disconnected":
				default:
					t.Fatalf("event %v", ev)
				}
			}
			if interrupted["text"] != cut || interrupted["message"] == "" {
				t.Fatalf("tts_interrupted %v, want text %q", interrupted, cut)
			}
			if speaking != 1 || done != 1 {
				t.Fatalf("cut generation: %d speaking, %d done, want 1 and 1", speaking, done)
			}
			wc.say(t, "2700")
			wc.bt.expect(t, "speaking")
			wc.bt.expect(t, "done")
			wc.rx.waitFrames(t, wc.rx.len()+5)
			fs := wc.rx.snapshot()[start:]
			runs := 0 // talkspurts that carry the cut generation's first word
			last := -1
			for _, s := range talkspurts(fs) {
				for i := s.first; i <= s.last; i++ {
					if fs[i].share[0] > 0.05 {
						runs++
						break
					}
				}
				last = s.last
				if fs[s.first].dominant() == len(freqs)-1 {
					if got, want := s.frames(), wordFrames(1); got < want || got > want+1 {
						t.Errorf("text after the drop: %d tone frames, want %d or %d", got, want, want+1)
					}
				}
			}
			if runs != 1 {
				t.Errorf("the cut generation's first word was heard in %d talkspurts, want 1", runs)
			}
			if last < 0 || fs[last-1].dominant() != len(freqs)-1 {
				t.Errorf("the last talkspurt is not the text sent after the drop")
			}
		})
	}
}
