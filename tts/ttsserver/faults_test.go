package ttsserver

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/voicebridge/voicebridge/tts"
)

// runs is how many times each timing-sensitive case runs: a defect that
// shows up one run in four escapes 12 runs with probability (3/4)^12 < 4%.
const runs = 12

// manyTones is text of n test-tone words.
func manyTones(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = fmt.Sprint(300 + 10*i)
	}
	return strings.Join(w, " ")
}

// munsitSession opens a raw munsit connection speaking TestTonesVoice.
func munsitSession(t *testing.T, rs *RunningServer) *websocket.Conn {
	t.Helper()
	ws := rawConn(t, rs.URL(tts.DialectMunsit), nil)
	if m := roundTrip(t, ws, `{"type":"initConnection","voice_id":"`+TestTonesVoice+`"}`); m["type"] != "connectionInitialized" {
		t.Fatalf("init: %v", m)
	}
	return ws
}

// audioLen returns the PCM byte length of an audio message, or -1.
func audioLen(t *testing.T, data []byte) int {
	t.Helper()
	var m struct {
		Audio *string `json:"audio"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Audio == nil {
		return -1
	}
	b, err := base64.StdEncoding.DecodeString(*m.Audio)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestClearStopsGeneration: a clear stops the generation under way, also
// when the server is behind its schedule (every chunk already due), and a
// ping after the clear is answered after the generation's last chunk:
// nothing of it follows the pong. The client reads nothing until it has
// sent the clear, so the server's writes back up.
func TestClearStopsGeneration(t *testing.T) {
	rs := startServer(t, ServerConfig{Pace: 1000, ChunkDuration: 20 * time.Millisecond})
	for i := range runs {
		ws := munsitSession(t, rs)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"text","text":"`+manyTones(60)+`","flush":true}`)); err != nil {
			t.Fatal(err)
		}
		if _, data, err := ws.ReadMessage(); err != nil || audioLen(t, data) <= 0 {
			t.Fatalf("run %d: first message %s, %v; want audio", i, data, err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"clear"}`)); err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteControl(websocket.PingMessage, []byte("after-clear"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		pong := false
		ws.SetPongHandler(func(string) error {
			pong = true
			// Nothing may follow the pong; wait a while for it.
			return ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		})
		total, afterPong := 0, 0
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				break
			}
			n := audioLen(t, data)
			total += n
			if pong && n >= 0 {
				afterPong++
			}
		}
		if !pong || afterPong > 0 {
			t.Fatalf("run %d: pong %v, %d audio messages after it (want 0)", i, pong, afterPong)
		}
		if full := 60 * 2 * ToneSamples(24000, 1); total >= full {
			t.Fatalf("run %d: the cleared generation was sent whole (%d bytes)", i, total)
		}
		ws.Close()
	}
}

// TestClearLagAndReaderPongs: with Faults.ClearLag and ReaderPongs the
// server behaves like a hosted service: the pong comes at once, and the
// cleared generation's audio keeps coming after it, for about ClearLag,
// then stops.
func TestClearLagAndReaderPongs(t *testing.T) {
	const lag = 150 * time.Millisecond
	rs := startServer(t, ServerConfig{Pace: PaceRealtime, ChunkDuration: 20 * time.Millisecond,
		Faults: Faults{ClearLag: lag, ReaderPongs: true}})
	ws := munsitSession(t, rs)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"text","text":"`+manyTones(30)+`","flush":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.ReadMessage(); err != nil || audioLen(t, data) <= 0 {
		t.Fatalf("first message %s, %v; want audio", data, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"clear"}`)); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	pong := false
	ws.SetPongHandler(func(string) error { pong = true; return nil })
	afterPong := 0 // bytes
	for {
		_ = ws.SetReadDeadline(time.Now().Add(lag + 500*time.Millisecond))
		_, data, err := ws.ReadMessage()
		if err != nil {
			break
		}
		if n := audioLen(t, data); pong && n > 0 {
			afterPong += n
		}
	}
	ms := afterPong / 48 // 24 kHz PCM16: 48 bytes per ms
	if !pong || ms == 0 || ms > 30*200/2 {
		t.Fatalf("pong %v; %d ms of audio after it, want some (about %v) and far from the generation's rest", pong, ms, lag)
	}
	t.Logf("audio after the pong: %d ms (ClearLag %v)", ms, lag)
}

// TestFirstChunkDuration: the first message of each generation carries
// FirstChunkDuration of audio, the next ones ChunkDuration.
func TestFirstChunkDuration(t *testing.T) {
	for _, ms := range []int{10, 40, 73, 100, 200} {
		t.Run(fmt.Sprint(ms, "ms"), func(t *testing.T) {
			d := time.Duration(ms) * time.Millisecond
			rs := startServer(t, ServerConfig{FirstChunkDuration: d, ChunkDuration: 60 * time.Millisecond})
			ws := munsitSession(t, rs)
			for gen := range 2 {
				if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"text","text":"500 600","flush":true}`)); err != nil {
					t.Fatal(err)
				}
				var sizes []int
				for sum := 0; sum < 2*2*ToneSamples(24000, 1); {
					_, data, err := ws.ReadMessage()
					if err != nil {
						t.Fatal(err)
					}
					n := audioLen(t, data)
					sizes = append(sizes, n)
					sum += n
				}
				if sizes[0] != ms*48 || sizes[1] != 60*48 {
					t.Fatalf("generation %d: chunk sizes %v, want %d then %d bytes", gen, sizes, ms*48, 60*48)
				}
			}
		})
	}
}

// TestTestTonesVoice: one phase-continuous tone per word, of the word's
// frequency, ToneWordDuration each, at every rate.
func TestTestTonesVoice(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Close()
	for _, rate := range []int{8000, 16000, 22050, 24000} {
		pcm, err := s.Synthesize(context.Background(), "440 1000 hello", TestTonesVoice, rate, 1)
		if err != nil {
			t.Fatal(err)
		}
		per := ToneSamples(rate, 1)
		if len(pcm) != 3*2*per {
			t.Fatalf("%d Hz: %d bytes, want %d", rate, len(pcm), 3*2*per)
		}
		x := make([]float64, len(pcm)/2)
		for i := range x {
			x[i] = float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		}
		for w, f := range []float64{440, 1000, ToneFrequency("hello")} {
			mid := x[w*per+per/4 : w*per+3*per/4]
			on, off := goertzel(mid, f, rate), goertzel(mid, f*1.5, rate)
			if on < 100*off {
				t.Errorf("%d Hz, word %d: power at %g Hz %g, at %g Hz %g", rate, w, f, on, f*1.5, off)
			}
		}
		// Continuity: no sample-to-sample jump beyond a tone's slope.
		for i := 1; i < len(x); i++ {
			if math.Abs(x[i]-x[i-1]) > ToneAmplitude*2*math.Pi*3500/float64(rate)+1 {
				t.Fatalf("%d Hz: jump at sample %d", rate, i)
			}
		}
	}
	if ToneFrequency("440") != 440 || ToneFrequency("hello") == ToneFrequency("world") {
		t.Error("ToneFrequency")
	}
}

// goertzel is the power of x at frequency f.
func goertzel(x []float64, f float64, rate int) float64 {
	w := 2 * math.Pi * f / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}
