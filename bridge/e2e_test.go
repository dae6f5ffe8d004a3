package bridge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hraban/opus"
	"github.com/voicebridge/voicebridge/tts"
)

// speechRMS is the decoded frame RMS (int16 units) above which a frame counts
// as speech; Opus silence decodes to (near) zero, espeak-ng speech to
// thousands.
const speechRMS = 200

// frameRec is one received RTP packet, decoded.
type frameRec struct {
	seq    uint16
	ts     uint32
	marker bool
	rms    float64
	at     time.Time
}

// recorder drains an offerer's packets, decodes them with a real Opus
// decoder and keeps per-frame levels. It runs until the test ends.
type recorder struct {
	mu     sync.Mutex
	frames []frameRec
	notify chan struct{} // cap 1: a frame was added
	wg     sync.WaitGroup
	stop   chan struct{}
}

func newRecorder(t *testing.T, off *offerer) *recorder {
	t.Helper()
	dec, err := opus.NewDecoder(48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{notify: make(chan struct{}, 1), stop: make(chan struct{})}
	pcm := make([]int16, 5760)
	r.wg.Go(func() {
		for {
			select {
			case <-r.stop:
				return
			case p := <-off.packets:
				n, err := dec.Decode(p.Payload, pcm)
				if err != nil {
					t.Errorf("opus decode: %v", err)
					return
				}
				var sum float64
				for _, v := range pcm[:n] {
					sum += float64(v) * float64(v)
				}
				fr := frameRec{seq: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker, rms: math.Sqrt(sum / float64(max(n, 1))), at: time.Now()}
				if n != 960 {
					t.Errorf("decoded %d samples, want 960 (20 ms)", n)
				}
				r.mu.Lock()
				r.frames = append(r.frames, fr)
				r.mu.Unlock()
				select {
				case r.notify <- struct{}{}:
				default:
				}
			}
		}
	})
	t.Cleanup(func() { close(r.stop); r.wg.Wait() })
	return r
}

// snapshot returns the frames so far.
func (r *recorder) snapshot() []frameRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]frameRec(nil), r.frames...)
}

// len returns the number of frames so far.
func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// waitFrames waits until at least n frames were received.
func (r *recorder) waitFrames(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for r.len() < n {
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("got %d frames, want %d", r.len(), n)
		}
	}
}

// speechSpan returns the first and last speech frame indexes of fs (-1 if
// none) and the count of speech frames.
func speechSpan(fs []frameRec) (first, last, n int) {
	first, last = -1, -1
	for i, f := range fs {
		if f.rms > speechRMS {
			if first < 0 {
				first = i
			}
			last = i
			n++
		}
	}
	return first, last, n
}

// bot is a bot WebSocket in a test: it records the events it receives.
type bot struct {
	conn   *websocket.Conn
	events chan map[string]any
	done   chan struct{}
}

func (b *testBridge) dialBot(t *testing.T, id string) *bot {
	t.Helper()
	u := "ws" + strings.TrimPrefix(b.url, "http") + "/v1/calls/" + id + "/ws"
	h := http.Header{}
	if b.tok != "" {
		h.Set("Authorization", "Bearer "+b.tok)
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		t.Fatal(err)
	}
	bt := &bot{conn: conn, events: make(chan map[string]any, 256), done: make(chan struct{})}
	go func() {
		defer close(bt.done)
		defer close(bt.events)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var ev map[string]any
			if err := json.Unmarshal(msg, &ev); err != nil {
				t.Errorf("bot event %s: %v", msg, err)
				return
			}
			bt.events <- ev
		}
	}()
	t.Cleanup(func() { conn.Close(); <-bt.done })
	return bt
}

func (bt *bot) send(t *testing.T, v any) {
	t.Helper()
	if err := bt.conn.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

// next returns the next event, skipping those whose type is in skip.
func (bt *bot) next(t *testing.T, skip ...string) map[string]any {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-bt.events:
			if !ok {
				t.Fatal("bot socket closed")
			}
			skipped := false
			for _, s := range skip {
				if ev["type"] == s {
					skipped = true
				}
			}
			if !skipped {
				return ev
			}
		case <-timeout:
			t.Fatal("timed out waiting for a bot event")
		}
	}
}

// expect fails unless the next event has type typ.
func (bt *bot) expect(t *testing.T, typ string, skip ...string) map[string]any {
	t.Helper()
	ev := bt.next(t, skip...)
	if ev["type"] != typ {
		t.Fatalf("event %v, want type %q", ev, typ)
	}
	return ev
}

// referenceSpeech asks the TTS server directly (a real tts.Client, as the
// bridge would) for text and returns the speech span's duration by the same
// 20 ms energy analysis the recorder uses.
func referenceSpeech(t *testing.T, url string, d tts.Dialect, text string) time.Duration {
	t.Helper()
	var mu sync.Mutex
	var pcm []int16
	rate := 0
	ended := make(chan struct{}, 1)
	h := tts.HandlerFuncs{
		AudioFunc: func(b []byte, r int) {
			mu.Lock()
			defer mu.Unlock()
			rate = r
			for i := 0; i+1 < len(b); i += 2 {
				pcm = append(pcm, int16(binary.LittleEndian.Uint16(b[i:])))
			}
		},
		GenerationEndFunc: func() { ended <- struct{}{} },
	}
	cl, err := tts.Dial(context.Background(), tts.ClientConfig{URL: url, Dialect: d, VoiceID: DefaultVoice, ModelID: DefaultModel}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.SendText(context.Background(), text, true, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ended, "the reference generation")
	mu.Lock()
	defer mu.Unlock()
	win := rate / 50
	first, last := -1, -1
	for i := 0; (i+1)*win <= len(pcm); i++ {
		var sum float64
		for _, v := range pcm[i*win : (i+1)*win] {
			sum += float64(v) * float64(v)
		}
		if math.Sqrt(sum/float64(win)) > speechRMS {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatal("reference speech is silent")
	}
	return time.Duration(last-first+1) * 20 * time.Millisecond
}

const testText = "مرحبا بك في فصيح كيف يمكنني مساعدتك اليوم"

// TestSpeechEndToEnd: text in, decoded Opus out, in both dialects and both
// POST forms, with events in order and the TTS connection closed at the end.
func TestSpeechEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		dialect tts.Dialect
		form    string
	}{
		{tts.DialectMunsit, "sdp"},
		{tts.DialectFaseeh, "json"},
	} {
		t.Run(string(tc.dialect), func(t *testing.T) {
			b := newBridge(t, Config{TTSDialect: tc.dialect})
			want := referenceSpeech(t, b.srv.ttsURL, tc.dialect, testText)

			off := newOfferer(t, 1<<14, nil)
			var id, answer string
			if tc.form == "sdp" {
				resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
				if resp.StatusCode != 201 {
					t.Fatalf("create: %d %s", resp.StatusCode, body)
				}
				id, answer = strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/"), string(body)
			} else {
				resp, body := b.do(t, "POST", "/v1/calls", "application/json", jsonBody(t, map[string]string{"sdp": off.offer(t)}))
				var cr createResponse
				if resp.StatusCode != 201 || json.Unmarshal(body, &cr) != nil {
					t.Fatalf("create: %d %s", resp.StatusCode, body)
				}
				id, answer = cr.ID, cr.SDP
			}
			if n := b.srv.embedded.rs.Connections(); n != 2 { // the reference client's is closing or closed
				t.Logf("tts connections after create: %d", n)
			}
			rec := newRecorder(t, off)
			off.accept(t, answer)
			waitFor(t, off.connected, "connect")
			bt := b.dialBot(t, id)
			// Let a second of silence flow: the stream is continuous.
			rec.waitFrames(t, 50)

			// Text in pieces, like LLM tokens, the last one flushing.
			words := strings.Fields(testText)
			for i, w := range words {
				resp, body := b.do(t, "POST", "/v1/calls/"+id+"/text", "application/json",
					jsonBody(t, map[string]any{"text": w + " ", "flush": i == len(words)-1}))
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("text: %d %s", resp.StatusCode, body)
				}
			}
			bt.expect(t, "speaking")
			bt.expect(t, "done")
			// A few frames after done: silence again.
			n := rec.len()
			rec.waitFrames(t, n+10)
			fs := rec.snapshot()
			first, last, speech := speechSpan(fs)
			if first < 0 {
				t.Fatal("no speech decoded")
			}
			got := time.Duration(last-first+1) * 20 * time.Millisecond
			t.Logf("speech: reference %v, decoded span %v, %d speech frames of %d", want, got, speech, len(fs))
			if diff := got - want; diff < -100*time.Millisecond || diff > 100*time.Millisecond {
				t.Errorf("decoded speech lasts %v, the TTS produced %v", got, want)
			}
			if first < 45 {
				t.Errorf("speech at frame %d, before any text was sent", first)
			}
			for _, f := range fs[last+1:] {
				if f.rms > speechRMS {
					t.Errorf("speech after done")
					break
				}
			}
			// Marker on the talkspurt's first packet only; timestamps step by
			// 960 per frame (a multiple when the pacer skipped a slot after a
			// scheduling hiccup, which -race on a small machine can cause).
			markers, dups := 0, 0
			seen := make(map[uint16]bool, len(fs))
			for i, f := range fs {
				if seen[f.seq] {
					dups++ // a NACK retransmission
					continue
				}
				seen[f.seq] = true
				if f.marker {
					markers++
				}
				if i == 0 {
					continue
				}
				if f.seq-fs[i-1].seq == 1 {
					if step := f.ts - fs[i-1].ts; step == 0 || step%960 != 0 {
						t.Errorf("timestamp step %d at seq %d", step, f.seq)
					}
				}
			}
			t.Logf("late frames %d, duplicates %d", b.getInfo(t, id).LateFrames, dups)
			if markers != 1 {
				t.Errorf("%d packets with the marker bit, want 1", markers)
			}
			info := b.getInfo(t, id)
			// The counter is bumped after the track write returns, so the
			// frame in flight may already be received but not counted.
			if info.SpeechFrames == 0 || info.FramesSent+uint64(dups)+2 < uint64(len(fs)) {
				t.Errorf("info: %+v", info)
			}

			_, body := b.do(t, "GET", "/metrics", "", nil)
			t.Logf("latency metrics:\n%s", grepLines(string(body), "_seconds_sum")+"\n"+grepLines(string(body), "_seconds_count"))

			// Hang up: the bot hears closed, the TTS connection is closed.
			if resp, body := b.do(t, "DELETE", "/v1/calls/"+id, "", nil); resp.StatusCode != 204 {
				t.Fatalf("delete: %d %s", resp.StatusCode, body)
			}
			ev := bt.expect(t, "closed")
			if ev["reason"] != "hangup" {
				t.Errorf("closed reason %v", ev["reason"])
			}
			waitTTSConnections(t, b, 0)
		})
	}
}

// waitTTSConnections waits until the embedded TTS has n open connections.
func waitTTSConnections(t *testing.T, b *testBridge, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for b.srv.embedded.rs.Connections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("embedded TTS has %d connections, want %d", b.srv.embedded.rs.Connections(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
