package tts_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/internal/ttstest"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestChunking: whatever the chunk sizes (odd, tiny, random, one byte),
// the Handler gets whole samples and exactly the synthesized PCM.
func TestChunking(t *testing.T) {
	tests := []struct {
		name string
		f    ttsserver.Faults
	}{
		{"odd", ttsserver.Faults{Chunking: ttsserver.ChunkOdd}},
		{"tiny", ttsserver.Faults{Chunking: ttsserver.ChunkTiny, Seed: 1}},
		{"random", ttsserver.Faults{Chunking: ttsserver.ChunkRandom, Seed: 2}},
		{"fixed-1-byte", ttsserver.Faults{Chunking: ttsserver.ChunkFixed, ChunkBytes: 1}},
		{"fixed-4801", ttsserver.Faults{Chunking: ttsserver.ChunkFixed, ChunkBytes: 4801}},
	}
	for _, tt := range tests {
		for _, d := range []tts.Dialect{tts.DialectFaseeh, tts.DialectMunsit} {
			t.Run(tt.name+"/"+string(d), func(t *testing.T) {
				rs := startServer(t, ttsserver.ServerConfig{Faults: tt.f, MunsitIsFinal: true})
				var odd atomic.Int32
				rec := newRecorder()
				h := tts.HandlerFuncs{
					AudioFunc: func(pcm []byte, rate int) {
						if len(pcm)%2 != 0 {
							odd.Add(1)
						}
						rec.Audio(pcm, rate)
					},
					GenerationEndFunc: rec.GenerationEnd,
					EventFunc:         rec.Event,
				}
				text := "نعم"
				cfg := clientConfig(rs, d)
				cfg.QuietPeriod = guard // ends from isFinal only: no stall may cut it short
				c := dial(t, cfg, h)
				if err := c.SendText(context.Background(), text, true, false); err != nil {
					t.Fatal(err)
				}
				rec.waitEnd(t)
				want, err := rs.Synthesize(context.Background(), text, "ar-najdi-male-2", 24000, 1)
				if err != nil {
					t.Fatal(err)
				}
				got, _, _ := rec.snapshot()
				if odd.Load() != 0 {
					t.Errorf("%d Audio calls with an odd byte count", odd.Load())
				}
				if !bytes.Equal(got, want[:len(want)&^1]) {
					t.Fatalf("got %d bytes, want %d identical", len(got), len(want))
				}
			})
		}
	}
}

func TestSampleRateChange(t *testing.T) {
	rs := startServer(t, ttsserver.ServerConfig{Faults: ttsserver.Faults{SwitchRateAfterChunks: 2, SwitchRate: 16000, Chunking: ttsserver.ChunkOdd}})
	rec := newRecorder()
	c := dial(t, clientConfig(rs, tts.DialectFaseeh), rec)
	if err := c.SendText(context.Background(), "مرحبا بك في فصيح كيف يمكنني مساعدتك اليوم", true, false); err != nil {
		t.Fatal(err)
	}
	rec.waitEnd(t)
	_, rates, _ := rec.snapshot()
	if len(rates) != 2 || rates[0] != 24000 || rates[1] != 16000 {
		t.Fatalf("rates = %v, want [24000 16000]", rates)
	}
}

// TestOutputFormats: munsit's output_format is honoured; faseeh speaks 24000.
func TestOutputFormats(t *testing.T) {
	rs := startServer(t, ttsserver.ServerConfig{})
	for _, f := range []string{"pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000"} {
		rate, _ := tts.FormatSampleRate(f)
		t.Run(f, func(t *testing.T) {
			rec := newRecorder()
			cfg := clientConfig(rs, tts.DialectMunsit)
			cfg.OutputFormat = f
			c := dial(t, cfg, rec)
			if err := c.SendText(context.Background(), "hello", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitEnd(t)
			if _, rates, _ := rec.snapshot(); len(rates) != 1 || rates[0] != rate {
				t.Fatalf("rates = %v, want [%d]", rates, rate)
			}
		})
	}
}

// TestGenerationEnd: munsit sends no isFinal, so the end is inferred after
// the quiet period; with isFinal it is taken from the wire. Either way
// once per flush.
func TestGenerationEnd(t *testing.T) {
	for _, isFinal := range []bool{false, true} {
		t.Run(map[bool]string{false: "inferred", true: "isFinal"}[isFinal], func(t *testing.T) {
			rs := startServer(t, ttsserver.ServerConfig{MunsitIsFinal: isFinal})
			rec := newRecorder()
			c := dial(t, clientConfig(rs, tts.DialectMunsit), rec)
			ctx := context.Background()
			for _, s := range []string{"one", "two"} {
				if err := c.SendText(ctx, s, true, false); err != nil {
					t.Fatal(err)
				}
				rec.waitEnd(t)
			}
			// Text without flush or trigger starts no generation.
			if err := c.SendText(ctx, "buffered", false, false); err != nil {
				t.Fatal(err)
			}
			if err := c.SendText(ctx, "", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitEnd(t)
			if _, _, ends := rec.snapshot(); ends != 3 {
				t.Fatalf("GenerationEnd %d times, want 3", ends)
			}
		})
	}
}

// TestServerErrorShapes: an error after N chunks arrives in each dialect's
// shape and becomes a *Error event.
func TestServerErrorShapes(t *testing.T) {
	for d, code := range map[tts.Dialect]string{tts.DialectFaseeh: "tts_error", tts.DialectMunsit: "50001"} {
		t.Run(string(d), func(t *testing.T) {
			rs := startServer(t, ttsserver.ServerConfig{Faults: ttsserver.Faults{ErrorAfterChunks: 1}})
			rec := newRecorder()
			c := dial(t, clientConfig(rs, d), rec)
			if err := c.SendText(context.Background(), "hello there", true, false); err != nil {
				t.Fatal(err)
			}
			ev := rec.waitEvent(t, tts.EventError)
			var e *tts.Error
			if !errors.As(ev.Err, &e) || e.Code != code || e.Dialect != d || !strings.Contains(e.Message, "injected") {
				t.Fatalf("event %v: want *tts.Error code %s", ev, code)
			}
			rec.waitEnd(t) // the failed generation still ends (inferred)
		})
	}
}

// scriptedServer answers initConnection and then sends script, raw.
func scriptedServer(t *testing.T, script ...string) string {
	t.Helper()
	return scripted(t, false, script...)
}

// scripted is scriptedServer; onText waits for a first text message
// before the script.
func scripted(t *testing.T, onText bool, script ...string) string {
	t.Helper()
	return scriptedInit(t, `{"type":"connectionInitialized"}`, onText, script...)
}

// scriptedInit is scripted answering initConnection with initReply.
func scriptedInit(t *testing.T, initReply string, onText bool, script ...string) string {
	t.Helper()
	base := wsPeer(t, func(ws *websocket.Conn) {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(initReply))
		if onText {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
		for _, s := range script {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
				return
			}
		}
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	return base + ttsserver.FaseehPath
}

// TestMalformedServerMessages: each gives a clear protocol error event, no
// panic, and the connection carries on (the over-limit one drops it).
func TestMalformedServerMessages(t *testing.T) {
	tests := []struct{ name, msg, want string }{
		{"bad JSON", `{"audio":`, "bad JSON"},
		{"bad base64", `{"audio":"@@@@","sampleRate":24000}`, "bad base64"},
		{"unknown sampleRate", `{"audio":"AQIDBA==","sampleRate":44100}`, "unsupported sampleRate 44100"},
		{"over limit", `{"audio":"` + strings.Repeat("A", 4096) + `","sampleRate":24000}`, "over the read limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := scriptedServer(t, tt.msg, `{"audio":"AQIDBA==","sampleRate":24000}`)
			rec := newRecorder()
			cfg := tts.ClientConfig{URL: url, ModelID: "m", VoiceID: "v", ReadLimit: 1024, MaxRedials: -1}
			dial(t, cfg, rec)
			ev := rec.waitEvent(t, tts.EventError)
			if !errors.Is(ev.Err, tts.ErrProtocol) || !strings.Contains(ev.Err.Error(), tt.want) {
				t.Fatalf("event %v, want a protocol error about %q", ev, tt.want)
			}
			if tt.name == "over limit" {
				rec.waitEvent(t, tts.EventDisconnected)
				return
			}
			rec.waitAudio(t) // the next good chunk still arrives
		})
	}
}

// switchable serves a ttsserver.Server that the test can take down and replace.
type switchable struct {
	mu   sync.Mutex
	srv  *ttsserver.Server
	down bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	srv, down := s.srv, s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	srv.ServeHTTP(w, r)
}

// TestRedialGiveUpThenSendText: after the redials of an outage fail, the
// client reports EventRedialFailed, keeps the text, and the next SendText
// redials and delivers it.
func TestRedialGiveUpThenSendText(t *testing.T) {
	sw := &switchable{srv: ttsserver.NewServer(ttsserver.ServerConfig{Pace: ttsserver.PaceASAP, FirstChunkDelay: -1, MunsitIsFinal: true})}
	hs := httptest.NewServer(sw)
	defer func() {
		hs.Close()
		sw.mu.Lock()
		sw.srv.Close()
		sw.mu.Unlock()
	}()
	rec := newRecorder()
	cfg := tts.ClientConfig{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + ttsserver.MunsitPath, VoiceID: "ar-x", MaxRedials: 2, RedialBackoff: 1,
		QuietPeriod: guard}
	c := dial(t, cfg, rec)
	ctx := context.Background()

	sw.mu.Lock()
	sw.down = true
	old := sw.srv
	sw.mu.Unlock()
	old.Close() // drops the connection
	rec.waitEvent(t, tts.EventDisconnected)
	ev := rec.waitEvent(t, tts.EventRedialFailed)
	if !errors.Is(ev.Err, tts.ErrNetwork) {
		t.Fatalf("redial failure %v, want tts.ErrNetwork", ev.Err)
	}
	if err := c.SendText(ctx, "queued while down ", false, false); err != nil {
		t.Fatal(err)
	}

	sw.mu.Lock()
	sw.srv, sw.down = ttsserver.NewServer(ttsserver.ServerConfig{Pace: ttsserver.PaceASAP, FirstChunkDelay: -1, MunsitIsFinal: true}), false
	sw.mu.Unlock()
	if err := c.SendText(ctx, "and now", true, false); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, tts.EventReconnected)
	rec.waitEnd(t)
	want, _ := sw.srv.Synthesize(ctx, "queued while down and now", "ar-x", 24000, 1)
	if got, _, _ := rec.snapshot(); !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want the %d of both texts", len(got), len(want))
	}
}

// TestKeyNeverLeaks: the key is in no error string and no log line.
func TestKeyNeverLeaks(t *testing.T) {
	const key = "sk-SUPERSECRET-123"
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&ttstest.LockedWriter{W: &logs, Mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer hs.Close()
	for _, p := range []tts.AuthPlacement{tts.AuthQuery, tts.AuthHeader, tts.AuthInitMessage} {
		cfg := tts.ClientConfig{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + ttsserver.MunsitPath + "?x-api-key=" + key, APIKey: key,
			Auth: p, VoiceID: "v", Logger: log}
		_, err := tts.Dial(context.Background(), cfg, tts.HandlerFuncs{})
		if err == nil || strings.Contains(err.Error(), key) {
			t.Fatalf("%v: error %v", p, err)
		}
		if p != tts.AuthInitMessage && !errors.Is(err, tts.ErrAuth) {
			t.Errorf("403 handshake: %v, want tts.ErrAuth", err)
		}
	}
	// Unreachable host: the dial error must not carry the URL's key either.
	cfg := tts.ClientConfig{URL: "ws://127.0.0.1:1/x?x-api-key=" + key, APIKey: key, Auth: tts.AuthQuery, ModelID: "m", VoiceID: "v", Logger: log}
	if _, err := tts.Dial(context.Background(), cfg, tts.HandlerFuncs{}); err == nil || strings.Contains(err.Error(), key) || !errors.Is(err, tts.ErrNetwork) {
		t.Fatalf("unreachable: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), key) {
		t.Fatalf("logs leak the key:\n%s", logs.String())
	}
	if got := tts.RedactURL("wss://h/p?x-api-key="+key+"&a=b", key); strings.Contains(got, key) || !strings.Contains(got, "x-api-key=REDACTED") {
		t.Fatalf("redactURL = %s", got)
	}
}

func TestValidate(t *testing.T) {
	ok := tts.ClientConfig{URL: "wss://api.faseeh.com/api/v1/text-to-speech", ModelID: "m", VoiceID: "v"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	mun := tts.ClientConfig{URL: "wss://api.munsit.ai/api/v1/websocket/text-to-speech", VoiceID: "v"}
	if err := mun.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mod   func(*tts.ClientConfig)
		field string
	}{
		{func(c *tts.ClientConfig) { c.URL = "" }, "url"},
		{func(c *tts.ClientConfig) { c.URL = "https://x/y" }, "url"},
		{func(c *tts.ClientConfig) { c.VoiceID = " " }, "voice_id"},
		{func(c *tts.ClientConfig) { c.ModelID = "" }, "model_id"},
		{func(c *tts.ClientConfig) { c.VoiceSettings.Stability = f64(1.1) }, "voice_settings.stability"},
		{func(c *tts.ClientConfig) { c.URL = mun.URL; c.VoiceSettings.SimilarityBoost = f64(-0.1) }, "voice_settings.similarity_boost"},
		{func(c *tts.ClientConfig) { c.URL = mun.URL; c.VoiceSettings.Speed = f64(1.3) }, "voice_settings.speed"},
		{func(c *tts.ClientConfig) { c.URL = mun.URL; c.VoiceSettings.Speed = f64(0.69) }, "voice_settings.speed"},
		{func(c *tts.ClientConfig) { c.VoiceSettings.Speed = f64(1) }, "voice_settings.speed"}, // faseeh has no speed
		{func(c *tts.ClientConfig) { c.OutputFormat = "mp3" }, "output_format"},
		{func(c *tts.ClientConfig) { c.Dialect = "polly" }, "dialect"},
		{func(c *tts.ClientConfig) { c.URL = mun.URL; c.LegacyInit = true }, "legacy_init"},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		var fe *tts.FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, tts.ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want a tts.FieldError on %s", c, err, tt.field)
		}
	}
	want := "tts: voice_settings.speed: must be between 0.7 and 1.2"
	if got := (tts.VoiceSettings{Speed: f64(2)}).Validate(); got == nil || got.Error() != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestCloseIdempotent(t *testing.T) {
	closed := make(chan struct{}, 1)
	rs := startServer(t, ttsserver.ServerConfig{OnMessage: func(_ tts.Dialect, msg []byte) {
		if string(msg) == `{"type":"closeConnection"}` {
			closed <- struct{}{}
		}
	}})
	c := dial(t, clientConfig(rs, tts.DialectMunsit), newRecorder())
	if err := c.SendText(context.Background(), "bye", true, false); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	select {
	case <-closed:
	case <-time.After(guard):
		t.Fatal("Close sent no closeConnection")
	}
	if err := c.SendText(context.Background(), "x", false, false); !errors.Is(err, tts.ErrClosed) {
		t.Fatalf("SendText after Close: %v", err)
	}
	if err := c.Clear(context.Background()); !errors.Is(err, tts.ErrClosed) {
		t.Fatalf("Clear after Close: %v", err)
	}
}

// TestFaseehWithoutIsFinal: a faseeh-style server that never sends isFinal
// still gets its generation ended, by the FirstAudioTimeout safety net,
// and then by the quiet period.
func TestFaseehWithoutIsFinal(t *testing.T) {
	url := scripted(t, true, `{"audio":"AQIDBA==","sampleRate":24000,"isFinal":false}`)
	rec := newRecorder()
	cfg := tts.ClientConfig{URL: url, ModelID: "m", VoiceID: "v", FirstAudioTimeout: 50 * time.Millisecond}
	c := dial(t, cfg, rec)
	if err := c.SendText(context.Background(), "x", true, false); err != nil {
		t.Fatal(err)
	}
	rec.waitEnd(t)
	if tts.SendsFinal(c) {
		t.Fatal("still trusting isFinal after a generation without it")
	}
}

// TestKeepalive: the client pings; a peer that stops answering is dropped
// (EventDisconnected), not waited on forever.
func TestKeepalive(t *testing.T) {
	pings := make(chan struct{}, 100)
	var answer atomic.Bool
	answer.Store(true)
	base := wsPeer(t, func(ws *websocket.Conn) {
		ws.SetPingHandler(func(app string) error {
			select {
			case pings <- struct{}{}:
			default:
			}
			if !answer.Load() {
				return nil // a stuck peer
			}
			return ws.WriteControl(websocket.PongMessage, []byte(app), time.Now().Add(time.Second))
		})
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"connectionInitialized"}`))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	rec := newRecorder()
	cfg := tts.ClientConfig{URL: base + ttsserver.FaseehPath, ModelID: "m", VoiceID: "v",
		PingInterval: 50 * time.Millisecond, MaxRedials: -1}
	dial(t, cfg, rec)
	select {
	case <-pings:
	case <-time.After(guard):
		t.Fatal("no keepalive ping")
	}
	answer.Store(false)
	ev := rec.waitEvent(t, tts.EventDisconnected)
	if !errors.Is(ev.Err, tts.ErrNetwork) {
		t.Fatalf("dead peer: %v, want tts.ErrNetwork", ev.Err)
	}
}

// TestInitTimeout: a service that never says connectionInitialized fails
// Dial with a network error once InitTimeout has passed.
func TestInitTimeout(t *testing.T) {
	base := wsPeer(t, func(ws *websocket.Conn) {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	cfg := tts.ClientConfig{URL: base + ttsserver.MunsitPath, VoiceID: "v", InitTimeout: 50 * time.Millisecond}
	_, err := tts.Dial(context.Background(), cfg, tts.HandlerFuncs{})
	if !errors.Is(err, tts.ErrNetwork) || !strings.Contains(err.Error(), "connectionInitialized") {
		t.Fatalf("got %v, want a network error about connectionInitialized", err)
	}
}
