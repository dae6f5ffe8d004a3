package bridge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// longText is speech that lasts long enough to be interrupted.
const longText = "مرحبا بك في فصيح كيف يمكنني مساعدتك اليوم. " +
	"هذه جملة طويلة لاختبار المقاطعة أثناء الكلام، ونريد أن نتأكد من أن الصوت يتوقف فورا. " +
	"ثم نكمل الحديث بجملة أخرى حتى يكون هناك ما يكفي من الكلام."

func TestClearStopsAudio(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectMunsit, tts.DialectFaseeh} {
		t.Run(string(d), func(t *testing.T) {
			b := newBridge(t, Config{TTSDialect: d})
			c := b.createCall(t, "")
			rec := newRecorder(t, c.off)
			bt := b.dialBot(t, c.id)
			bt.send(t, map[string]any{"type": "text", "text": longText, "flush": true})
			bt.expect(t, "speaking")
			// Wait for half a second of speech on the wire.
			for {
				rec.waitFrames(t, rec.len()+1)
				if _, _, n := speechSpan(rec.snapshot()); n >= 25 {
					break
				}
			}
			sess, err := b.srv.lookup(c.id)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := b.do(t, "POST", "/v1/calls/"+c.id+"/clear", "", nil)
			if resp.StatusCode != 204 {
				t.Fatalf("clear: %d %s", resp.StatusCode, body)
			}
			// Frames are told apart by how many the bridge had sent when
			// clear returned, not by when the test decoded them (the
			// recorder may lag on a loaded machine): frame k has sequence
			// number first+k.
			sent := int(sess.framesSent())
			first := rec.snapshot()[0].seq
			for {
				fs := rec.snapshot()
				if int(fs[len(fs)-1].seq-first) >= sent+25 {
					break
				}
				rec.waitFrames(t, len(fs)+1)
			}
			// The frame in flight when clear returned may still be speech;
			// then silence: at most 2 frames (40 ms) of speech after clear.
			speech := 0
			for _, f := range rec.snapshot() {
				k := int(f.seq - first)
				if k < sent || f.rms <= speechRMS {
					continue
				}
				speech++
				t.Logf("speech at frame %d after clear (rms %.0f)", k-sent, f.rms)
				if k >= sent+2 {
					t.Errorf("speech %d frames after clear returned", k-sent)
				}
			}
			t.Logf("%d speech frames after clear returned", speech)
			// No done for the abandoned generation: the next events are those
			// of new text.
			bt.send(t, map[string]any{"type": "text", "text": "نعم", "try_trigger_generation": true})
			bt.expect(t, "speaking")
			bt.expect(t, "done")
			info := b.getInfo(t, c.id)
			if info.State != stateConnected {
				t.Errorf("state %q after clear", info.State)
			}
		})
	}
}

func TestBotProtocol(t *testing.T) {
	b := newBridge(t, Config{})
	c := b.createCall(t, "")
	bt := b.dialBot(t, c.id)
	bt2 := b.dialBot(t, c.id) // a second socket on the same call sees every event

	// A bot written for Munsit starts with initConnection.
	bt.send(t, map[string]any{"type": "initConnection", "model_id": "faseeh-v1-preview", "voice_id": "ar-najdi-male-2",
		"voice_settings": map[string]any{"stability": 0.5, "similarity_boost": 0.75, "speed": 1.0},
		"output_format":  "pcm_24000", "x_api_key": "ignored"})
	bt.expect(t, "connectionInitialized")
	// Faseeh's legacy form, too.
	bt.send(t, map[string]any{"voice_id": "v", "model_id": "m", "stability": 0.5})
	bt.expect(t, "connectionInitialized")
	bt.send(t, map[string]any{"type": "initConnection", "voice_id": "v", "voice_settings": map[string]any{"speed": 3}})
	if ev := bt.expect(t, "error"); ev["code"] != "invalid_field" {
		t.Errorf("bad speed: %v", ev)
	}
	bt.send(t, map[string]any{"type": "bogus"})
	bt.expect(t, "error")
	if err := bt.conn.WriteMessage(1, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if ev := bt.expect(t, "error"); ev["code"] != "bad_json" {
		t.Errorf("bad json: %v", ev)
	}
	bt.send(t, map[string]any{"type": "text"})
	bt.expect(t, "error")

	// Tokens streamed as text messages, flushed at the end.
	for _, w := range strings.Fields(testText) {
		bt.send(t, map[string]any{"type": "text", "text": w + " ", "flush": false, "try_trigger_generation": false})
	}
	bt.send(t, map[string]any{"type": "text", "text": "", "flush": true})
	for _, s := range []*bot{bt, bt2} {
		s.expect(t, "speaking")
		s.expect(t, "done")
	}
	// closeConnection ends the call: every socket hears closed, in order.
	bt.send(t, map[string]any{"type": "closeConnection"})
	for _, s := range []*bot{bt, bt2} {
		if ev := s.expect(t, "closed"); ev["reason"] != "bot_closed" {
			t.Errorf("closed: %v", ev)
		}
		waitFor(t, s.done, "the bridge to close the bot socket")
	}
	if info := b.getInfo(t, c.id); info.State != stateClosed || info.CloseReason != "bot_closed" {
		t.Errorf("info: %+v", info)
	}
	waitTTSConnections(t, b, 0)
	resp, body := b.do(t, "POST", "/v1/calls/"+c.id+"/text", "application/json", []byte(`{"text":"x"}`))
	wantError(t, resp, body, 404, "call_not_found")
}

func TestTTSRefusal(t *testing.T) {
	ctx := context.Background()
	rs, err := ttsserver.Start(ctx, "", ttsserver.ServerConfig{APIKey: "the-right-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for _, d := range []tts.Dialect{tts.DialectMunsit, tts.DialectFaseeh} {
		t.Run(string(d), func(t *testing.T) {
			const wrongKey = "wrong-key-123"
			b := newBridge(t, Config{TTSURL: rs.URL(d), TTSAPIKey: wrongKey})
			off := newOfferer(t, 16, nil)
			resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
			if resp.StatusCode != 502 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if strings.Contains(string(body), wrongKey) {
				t.Errorf("the TTS key leaked: %s", body)
			}
			var e apiError
			_ = json.Unmarshal(body, &e)
			t.Logf("%s refusal: %s", d, body)
			if d == tts.DialectMunsit && (e.Error.Code != "40101" || e.Error.Message != "Invalid API key") {
				t.Errorf("munsit refusal passed on as %+v", e.Error)
			}
			if e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("refusal without code or message: %s", body)
			}
			if n := len(b.srv.calls); n != 0 {
				t.Errorf("%d calls registered", n)
			}
			// The server keeps serving.
			if resp, _ := b.do(t, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
				t.Error("healthz after refusal")
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		b := newBridge(t, Config{TTSURL: "ws://127.0.0.1:1/api/v1/websocket/text-to-speech"})
		off := newOfferer(t, 16, nil)
		resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
		wantError(t, resp, body, 502, "tts_unavailable")
		if strings.Contains(string(body), "127.0.0.1") {
			t.Errorf("the TTS address leaked: %s", body)
		}
	})
	t.Run("faseeh speed", func(t *testing.T) {
		// Faseeh has no speed: refused before dialing, as a field error.
		b := newBridge(t, Config{TTSURL: rs.URL(tts.DialectFaseeh), TTSAPIKey: "the-right-key"})
		resp, body := b.do(t, "POST", "/v1/calls?speed=1.0", "application/sdp", []byte(newOfferer(t, 16, nil).offer(t)))
		wantError(t, resp, body, 400, "invalid_field")
	})
}

func TestTTSTroubleDoesNotEndCall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults ttsserver.Faults
		code   string
	}{
		{"drop", ttsserver.Faults{DropAfterChunks: 4, Times: 1}, "tts_disconnected"},
		{"error", ttsserver.Faults{ErrorAfterChunks: 4, Times: 1}, "50001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBridge(t, Config{}, seams{ttsServer: ttsserver.ServerConfig{Faults: tc.faults}})
			c := b.createCall(t, "")
			bt := b.dialBot(t, c.id)
			bt.send(t, map[string]any{"type": "text", "text": testText, "flush": true})
			ev := bt.expect(t, "error", "speaking", "done")
			if ev["code"] != tc.code {
				t.Errorf("error event %v, want code %s", ev, tc.code)
			}
			// The call goes on: new text is spoken (its speaking, then its
			// done; a cut generation's done may come first).
			bt.send(t, map[string]any{"type": "text", "text": "نعم", "flush": true})
			for spoke := false; ; {
				ev := bt.next(t, "error")
				if ev["type"] == "done" && spoke {
					break
				}
				spoke = spoke || ev["type"] == "speaking"
			}
			if info := b.getInfo(t, c.id); info.State != stateConnected {
				t.Errorf("state %q", info.State)
			}
			_, body := b.do(t, "GET", "/metrics", "", nil)
			if tc.name == "drop" && !strings.Contains(string(body), "voicebridge_tts_reconnects_total 1") {
				t.Errorf("no reconnect counted:\n%s", grepLines(string(body), "voicebridge_tts"))
			}
		})
	}
}

func TestTextCap(t *testing.T) {
	b := newBridge(t, Config{MaxPendingText: 64})
	c := b.createCall(t, "")
	text := func(s string) int {
		resp, _ := b.do(t, "POST", "/v1/calls/"+c.id+"/text", "application/json", jsonBody(t, map[string]any{"text": s}))
		return resp.StatusCode
	}
	if st := text(strings.Repeat("a", 60)); st != 202 {
		t.Fatalf("60 bytes: %d", st)
	}
	resp, body := b.do(t, "POST", "/v1/calls/"+c.id+"/text", "application/json", []byte(`{"text":"0123456789"}`))
	wantError(t, resp, body, 429, "text_buffer_full")
	if resp, _ := b.do(t, "POST", "/v1/calls/"+c.id+"/clear", "", nil); resp.StatusCode != 204 {
		t.Fatal("clear")
	}
	if st := text("0123456789"); st != 202 {
		t.Fatalf("after clear: %d", st)
	}
}

func TestShutdownEndsCalls(t *testing.T) {
	b := newBridge(t, Config{})
	c := b.createCall(t, "")
	bt := b.dialBot(t, c.id)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := bt.expect(t, "closed"); ev["reason"] != "shutdown" {
		t.Errorf("closed: %v", ev)
	}
	waitFor(t, c.off.closed, "the peer to see the end of the call")
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(newOfferer(t, 16, nil).offer(t)))
	wantError(t, resp, body, 503, "shutting_down")
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
