package ttsserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/internal/ttstest"
)

func TestServerHTTP(t *testing.T) {
	rs := startServer(t, ServerConfig{})
	base := "http://" + rs.Addr()
	for path, status := range map[string]int{"/nope": 404, FaseehPath: 426, MunsitPath: 426} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != status || body.Error.Code == "" {
			t.Errorf("GET %s: %d %+v, want %d with a JSON error", path, resp.StatusCode, body, status)
		}
	}
}

// rawConn is a plain WebSocket to the embedded server.
func rawConn(t *testing.T, url string, header http.Header) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(guard))
	return ws
}

func roundTrip(t *testing.T, ws *websocket.Conn, msg string) map[string]any {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("after %s: %v", msg, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func keys(m map[string]any) string {
	return strings.Join(sortedKeys(m), ",")
}

// TestServerErrorShapesOnWire: strict refusals come back in each dialect's
// own error shape, and the connection stays usable.
func TestServerErrorShapesOnWire(t *testing.T) {
	rs := startServer(t, ServerConfig{})
	f := rawConn(t, rs.URL(tts.DialectFaseeh), nil)
	m := roundTrip(t, f, `{"type":"text","text":"a","try_trigger_generation":false}`)
	if keys(m) != "message,type" || m["type"] != "error" || !strings.Contains(m["message"].(string), "not initialized") {
		t.Errorf("faseeh text before init: %v", m)
	}
	if m := roundTrip(t, f, `{"type":"initConnection","model_id":"m","voice_id":"v"}`); m["type"] != "connectionInitialized" {
		t.Fatalf("faseeh init: %v", m)
	}
	m = roundTrip(t, f, `{"type":"text","text":"a","flush":true,"try_trigger_generation":true}`)
	if keys(m) != "message,type" || !strings.Contains(m["message"].(string), `unknown field "flush"`) {
		t.Errorf("faseeh flush: %v", m)
	}
	// Faseeh audio: audio, sampleRate, isFinal; the last chunk is final and empty.
	m = roundTrip(t, f, `{"type":"text","text":"hi","try_trigger_generation":true}`)
	if keys(m) != "audio,isFinal,sampleRate" || m["sampleRate"] != float64(24000) || m["isFinal"] != false {
		t.Errorf("faseeh audio: %v", m)
	}
	for m["isFinal"] == false {
		_, data, err := f.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		m = nil
		_ = json.Unmarshal(data, &m)
	}
	if m["audio"] != "" || m["sampleRate"] != float64(24000) {
		t.Errorf("faseeh final chunk: %v", m)
	}

	mu := rawConn(t, rs.URL(tts.DialectMunsit), nil)
	m = roundTrip(t, mu, `{"type":"initConnection","voice_id":"v","voice_settings":{"speed":2}}`)
	if keys(m) != "errorCode,errorMessage,type" || m["errorCode"] != float64(40001) || !strings.Contains(m["errorMessage"].(string), "speed") {
		t.Errorf("munsit bad speed: %v", m)
	}
	if m := roundTrip(t, mu, `{"type":"initConnection","voice_id":"v"}`); m["type"] != "connectionInitialized" {
		t.Fatalf("munsit init: %v", m)
	}
	if m := roundTrip(t, mu, `{"type":"initConnection","voice_id":"v"}`); m["errorCode"] != float64(40001) {
		t.Errorf("munsit second init: %v", m)
	}
	// A flushed text is spoken: audio with audio and sampleRate only.
	m = roundTrip(t, mu, `{"type":"text","text":"hi","flush":true}`)
	if keys(m) != "audio,sampleRate" || m["sampleRate"] != float64(24000) {
		t.Errorf("munsit audio: %v", m)
	}
}

// TestServerAuthOnWire: a wrong key gets the dialect's error, then a
// policy-violation close.
func TestServerAuthOnWire(t *testing.T) {
	rs := startServer(t, ServerConfig{APIKey: "right"})
	mu := rawConn(t, rs.URL(tts.DialectMunsit)+"?x-api-key=wrong", nil)
	m := roundTrip(t, mu, `{"type":"initConnection","voice_id":"v"}`)
	if m["errorCode"] != float64(40101) || m["errorMessage"] != "Invalid API key" {
		t.Errorf("munsit wrong key: %v", m)
	}
	if _, _, err := mu.ReadMessage(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("after refusal: %v, want close 1008", err)
	}
	f := rawConn(t, rs.URL(tts.DialectFaseeh), http.Header{"X-Api-Key": {"wrong"}})
	m = roundTrip(t, f, `{"type":"initConnection","model_id":"m","voice_id":"v"}`)
	if keys(m) != "message,type" || m["message"] != "Invalid API key" {
		t.Errorf("faseeh wrong key: %v", m)
	}
	f2 := rawConn(t, rs.URL(tts.DialectFaseeh), nil)
	if m := roundTrip(t, f2, `{"type":"initConnection","model_id":"m","voice_id":"v"}`); m["message"] != "API key required" {
		t.Errorf("faseeh no key: %v", m)
	}
	refuse := startServer(t, ServerConfig{Faults: Faults{RefuseAuth: true}})
	_, err := tts.Dial(context.Background(), clientConfig(refuse, tts.DialectMunsit), tts.HandlerFuncs{})
	if e, ok := err.(*tts.Error); !ok || e.Code != "40101" {
		t.Errorf("RefuseAuth: %v", err)
	}
}

func TestLegacyInit(t *testing.T) {
	rs := startServer(t, ServerConfig{})
	rec := newRecorder()
	cfg := clientConfig(rs, tts.DialectFaseeh)
	cfg.LegacyInit = true
	cfg.VoiceSettings.Stability = f64(0.3)
	c := dial(t, cfg, rec)
	if err := c.SendText(context.Background(), "hi", false, true); err != nil {
		t.Fatal(err)
	}
	rec.waitEnd(t)
}

func rms(pcm []byte) float64 {
	var sum float64
	for i := 0; i+1 < len(pcm); i += 2 {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[i:])))
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(pcm)/2))
}

func TestServerFallbackVoice(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&ttstest.LockedWriter{W: &logs, Mu: &mu}, nil))
	s := NewServer(ServerConfig{ESpeakPath: "/nonexistent/espeak-ng", Logger: log})
	defer s.Close()
	ctx := context.Background()
	a, err := s.synth.pcm(ctx, "مرحبا بك، كيف حالك؟", "ar-najdi-male-2", 16000, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := fallbackVoice("مرحبا بك، كيف حالك؟", "ar-najdi-male-2", 16000, 1)
	if len(a) < 16000 || len(a) != 2*len(b) || rms(a) < 300 {
		t.Fatalf("fallback: %d bytes, rms %.0f", len(a), rms(a))
	}
	if _, err := s.synth.pcm(ctx, "second text", "ar-x", 8000, 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := strings.Count(logs.String(), "espeak-ng not found")
	mu.Unlock()
	if n != 1 {
		t.Fatalf("warning logged %d times, want once", n)
	}
}

func TestEspeakArabic(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng not installed")
	}
	s := NewServer(ServerConfig{})
	defer s.Close()
	if s.synth.usingFallback() {
		t.Fatal("espeak-ng on PATH but not used")
	}
	pcm, err := s.synth.pcm(context.Background(), "مرحبا بك في فصيح", "ar-najdi-male-2", 24000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) < 24000 || rms(pcm) < 300 {
		t.Fatalf("espeak-ng Arabic: %d bytes, rms %.0f", len(pcm), rms(pcm))
	}
	for id, want := range map[string]string{"ar-najdi-male-2": "ar", "AR-x": "ar", "ar": "ar", "en-us": "en", "ar-female-1": "ar+f3", "arnold": "en"} {
		if got := espeakVoice(id); got != want {
			t.Errorf("espeakVoice(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestServerSharesSynthesis: many connections speaking the same text cost
// one synthesis.
func TestServerSharesSynthesis(t *testing.T) {
	rs := startServer(t, ServerConfig{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			rec := newRecorder()
			c, err := tts.Dial(context.Background(), clientConfig(rs, tts.DialectFaseeh), rec)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if err := c.SendText(context.Background(), "the same prompt for everyone", true, false); err != nil {
				t.Error(err)
				return
			}
			if !rec.ended() {
				t.Error("no GenerationEnd")
			}
		})
	}
	wg.Wait()
	if n := rs.Syntheses(); n != 1 {
		t.Fatalf("%d syntheses for one text, want 1", n)
	}
}

func TestResample(t *testing.T) {
	const f = 440.0
	in := make([]int16, espeakRate)
	for i := range in {
		in[i] = int16(10000 * math.Sin(2*math.Pi*f*float64(i)/espeakRate))
	}
	for _, rate := range []int{8000, 16000, 22050, 24000} {
		out := resamplePCM(in, espeakRate, rate)
		if len(out) != rate {
			t.Fatalf("%d: %d samples", rate, len(out))
		}
		// Compare with the ideal sine away from the edges.
		var errSum, sigSum float64
		for i := 200; i < len(out)-200; i++ {
			want := 10000 * math.Sin(2*math.Pi*f*float64(i)/float64(rate))
			d := float64(out[i]) - want
			errSum += d * d
			sigSum += want * want
		}
		if snr := 10 * math.Log10(sigSum/errSum); snr < 40 {
			t.Errorf("%d Hz: SNR %.1f dB, want ≥ 40", rate, snr)
		}
	}
	// A tone above the target Nyquist must be filtered, not aliased.
	for i := range in {
		in[i] = int16(10000 * math.Sin(2*math.Pi*6000*float64(i)/espeakRate))
	}
	out := resamplePCM(in, espeakRate, 8000)
	var s float64
	for _, v := range out[200 : len(out)-200] {
		s += float64(v) * float64(v)
	}
	if r := math.Sqrt(s / float64(len(out)-400)); r > 100 {
		t.Errorf("6 kHz into 8 kHz: rms %.0f, want it filtered out", r)
	}
}

// TestServerCloseEndsConnections: Close drops every client (which sees a
// disconnect) and leaves no goroutine behind (goleak in TestMain).
func TestServerCloseEndsConnections(t *testing.T) {
	rs := startServer(t, ServerConfig{Pace: PaceSlow})
	rec := newRecorder()
	cfg := clientConfig(rs, tts.DialectMunsit)
	cfg.MaxRedials = -1
	c := dial(t, cfg, rec)
	if err := c.SendText(context.Background(), "a long text that is still being spoken when the server closes", true, false); err != nil {
		t.Fatal(err)
	}
	rec.waitAudio(t)
	rs.Close()
	rec.waitEvent(t, tts.EventDisconnected)
	rec.waitEvent(t, tts.EventRedialFailed)
	if n := rs.Connections(); n != 0 {
		t.Fatalf("%d connections after Close", n)
	}
}

// TestServerManyConnections: the embedded server carries many concurrent
// calls (the bridge load-tests it with hundreds).
func TestServerManyConnections(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	rs := startServer(t, ServerConfig{Pace: PaceRealtime})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := tts.DialectFaseeh
			if i%2 == 1 {
				d = tts.DialectMunsit
			}
			rec := newRecorder()
			cfg := clientConfig(rs, d)
			cfg.QuietPeriod = guard // munsit: no stall may end it early
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			c, err := tts.Dial(ctx, cfg, rec)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if err := c.SendText(ctx, "نعم", true, false); err != nil {
				t.Error(err)
				return
			}
			if d == tts.DialectFaseeh && !rec.ended() || d == tts.DialectMunsit && !rec.heard() {
				t.Errorf("%s call %d: nothing heard", d, i)
			}
		})
	}
	wg.Wait()
	if got := rs.Syntheses(); got != 1 {
		t.Errorf("%d syntheses for one text and rate, want 1", got)
	}
}

// espeakChildren counts this process's espeak-ng children.
func espeakChildren(t *testing.T) int {
	t.Helper()
	me := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(espeak-ng") {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == me {
			n++
		}
	}
	return n
}

// TestSynthesisKilledWhenAbandoned: when the only caller waiting for a
// synthesis gives up (clear, close), espeak-ng is killed and reaped.
func TestSynthesisKilledWhenAbandoned(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng not installed")
	}
	s := NewServer(ServerConfig{})
	defer s.Close()
	long := strings.Repeat("مرحبا بك في فصيح كيف يمكنني مساعدتك اليوم. ", 400)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.synth.pcm(ctx, long, "ar-x", 24000, 1)
		done <- err
	}()
	// Wait until espeak-ng runs (failure guard only), then give up.
	deadline := time.Now().Add(guard)
	for espeakChildren(t) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("espeak-ng never started")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("pcm: %v, want context.Canceled", err)
	}
	for espeakChildren(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("espeak-ng still running after its caller gave up")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServerBuffering: text waits for flush or try_trigger_generation;
// munsit clear empties the buffer.
func TestServerBuffering(t *testing.T) {
	rs := startServer(t, ServerConfig{MunsitIsFinal: true})
	ws := rawConn(t, rs.URL(tts.DialectMunsit), nil)
	if m := roundTrip(t, ws, `{"type":"initConnection","voice_id":"v","output_format":"pcm_8000"}`); m["type"] != "connectionInitialized" {
		t.Fatal(m)
	}
	for _, msg := range []string{
		`{"type":"text","text":"never spoken"}`,
		`{"type":"clear"}`,
		`{"type":"text","text":"","flush":true}`,
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// The empty flush is an empty generation: its final chunk comes at once.
	_, data, err := ws.ReadMessage()
	if err != nil || string(data) != `{"audio":"","sampleRate":8000,"isFinal":true}` {
		t.Fatalf("after clear: %s %v, want only an empty final chunk", data, err)
	}
	m := roundTrip(t, ws, `{"type":"text","text":"spoken","try_trigger_generation":true}`)
	if m["sampleRate"] != float64(8000) || m["audio"] == "" {
		t.Fatalf("try_trigger_generation: %v", m)
	}
}
