package web_test

// The demo page as a two-way call: chromium's fake microphone plays a WAV of
// spoken words, the page offers sendrecv, and the keypad sends RFC 4733 DTMF.
// What counts is what reaches a bot: a separate bot socket of this test
// listens to the call (listen=pcm_16000) and must get audio with energy and
// exactly the digits clicked, in order.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// speechRMS is the RMS (full scale = 1) above which a 20 ms frame counts as
// voice. Silence and comfort noise stay far below it; espeak-ng's words
// through Chrome's echo canceller and noise suppressor peak well above.
const speechRMS = 0.01

func TestDemoPageMicrophoneAndKeypad(t *testing.T) {
	wav := spokenWAV(t, "one two three four five, the caller is talking to the bot")
	srv := startBridge(t, "")
	p := newPage(t, 1100, 1500,
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
	)
	start := time.Now()

	p.do("open the page", chromedp.Navigate(srv.URL+"/"))
	p.waitFor("the page to load /config.json", `voicebridgeDemo.state.phase === 'idle'`)
	if !eval[bool](p, `[...document.querySelectorAll('#keypad button')].every(b => b.disabled)`) {
		t.Error("the keypad is enabled before any call")
	}
	p.do("turn the microphone on and connect",
		chromedp.Click(chromedp.ID("mic")),
		chromedp.Click(chromedp.ID("connect")))
	p.waitFor("the call to connect", `voicebridgeDemo.state.phase === 'connected' && voicebridgeDemo.state.wsState === 'open'`)
	if !eval[bool](p, `voicebridgeDemo.state.micCall`) {
		p.fail("connected with the microphone box checked, but the call is not a microphone call")
	}

	// A bot of this test listens to the same call, as any bot would.
	bot := dialListeningBot(t, srv.URL, p.state().CallURL)

	// The page's own meter: its listening socket gets the user's voice.
	p.waitFor("the page's meter to see the voice", fmt.Sprintf(
		`voicebridgeDemo.caller.frames >= 50 && voicebridgeDemo.caller.maxRms > %g`, speechRMS))
	// The test's bot: audio frames of 20 ms with energy.
	bot.waitVoice(t, 10)

	// The keypad: exactly these digits, in this order, as dtmf events.
	const digits = "15#0*9"
	p.waitFor("the keypad to be enabled", `[...document.querySelectorAll('#keypad button')].every(b => !b.disabled)`)
	for _, d := range digits {
		sel := fmt.Sprintf(`#keypad button[data-digit=%q]`, string(d))
		p.do("click "+string(d), chromedp.Click(chromedp.CSS(sel)))
	}
	got := bot.waitDigits(t, len(digits))
	if got != digits {
		t.Errorf("the bot got digits %q, want %q (the clicked ones, in order)", got, digits)
	}
	p.waitFor("the page's log to show every dtmf event", fmt.Sprintf(`%s >= %d`, countEvents("dtmf"), len(digits)))
	logged := eval[string](p, `voicebridgeDemo.events.filter(e => e.type === 'dtmf').map(e => e.detail.split(' ')[0]).join('')`)
	if logged != digits {
		t.Errorf("the page logged dtmf %q, want %q", logged, digits)
	}
	if sent := eval[string](p, `voicebridgeDemo.caller.digitsSent`); sent != digits {
		t.Errorf("the page says it sent %q, want %q", sent, digits)
	}
	frames, voiced, maxRMS, bad := bot.audioStats()
	if bad != 0 {
		t.Errorf("%d binary messages were not 640 bytes (20 ms at 16 kHz)", bad)
	}
	c := eval[struct {
		Frames    int     `json:"frames"`
		BadFrames int     `json:"badFrames"`
		MaxRms    float64 `json:"maxRms"`
	}](p, `voicebridgeDemo.caller`)
	if c.BadFrames != 0 {
		t.Errorf("the page got %d caller messages that were not 640 bytes", c.BadFrames)
	}

	// Speak sends a mark after its text: the log shows it answered once its
	// audio is on the wire.
	p.do("click Speak", chromedp.Click(chromedp.ID("speak")))
	p.waitFor("the speech to end", countEvents("done")+` >= 1`)
	p.waitFor("the mark in the log", `voicebridgeDemo.events.some(e => e.type === 'mark' && e.detail.startsWith('speak-1 (its audio is on the wire)'))`)
	if marks := p.state().Marks; marks != "yes" {
		t.Errorf("state.marks %q after an answered mark, want yes", marks)
	}
	if st := p.state(); st.Error != "" {
		t.Errorf("the page shows an error: %q", st.Error)
	}
	p.screenshot("web-demo-mic.png")

	callURL := p.state().CallURL
	p.do("click Hang up", chromedp.Click(chromedp.ID("hangup")))
	p.waitFor("the call to end", `voicebridgeDemo.state.phase === 'closed'`)
	srv.assertHungUp(t, callURL, "hangup")
	bot.close()
	t.Logf("test bot: %d frames, %d with voice (RMS > %g), max RMS %.3f; page meter: %d frames, max RMS %.3f; digits %q; whole test %v",
		frames, voiced, speechRMS, maxRMS, c.Frames, c.MaxRms, got, time.Since(start).Round(time.Millisecond))
}

// spokenWAV synthesizes text with espeak-ng and writes it as the WAV
// chromium's fake microphone plays in a loop: 48 kHz mono PCM16, with a
// short pause so the loop has word boundaries. It skips the test when
// espeak-ng is missing (outside CI), like chromiumPath.
func spokenWAV(t *testing.T, text string) string {
	t.Helper()
	bin, err := exec.LookPath("espeak-ng")
	if err != nil {
		const msg = "espeak-ng is not installed: the microphone test speaks with it"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out, err := exec.Command(bin, "-v", "en", "-s", "150", "--stdout", text).Output()
	if err != nil {
		t.Fatalf("espeak-ng: %v", err)
	}
	pcm, rate, err := readWAV(out)
	if err != nil {
		t.Fatalf("espeak-ng's WAV: %v", err)
	}
	const outRate = 48000
	samples := resampleLinear(pcm, rate, outRate)
	samples = append(samples, make([]int16, outRate*3/10)...) // 300 ms pause before the loop repeats
	path := filepath.Join(t.TempDir(), "caller.wav")
	if err := os.WriteFile(path, wavBytes(samples, outRate), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readWAV returns the PCM16 mono samples and rate of a RIFF WAV. espeak-ng
// writing to a pipe cannot seek back, so its data size may be a placeholder:
// the data chunk runs to the end of the input then.
func readWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("not a RIFF WAVE file")
	}
	var rate, channels, bits int
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, fmt.Errorf("short fmt chunk")
			}
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			if channels != 1 || bits != 16 || rate <= 0 {
				return nil, 0, fmt.Errorf("want mono 16-bit PCM, got %d channels, %d bits, %d Hz", channels, bits, rate)
			}
			if size > len(body) || size == 0 {
				size = len(body)
			}
			pcm := make([]int16, size/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return pcm, rate, nil
		}
		off += 8 + size + size%2
	}
	return nil, 0, fmt.Errorf("no data chunk")
}

// resampleLinear is good enough for a test's microphone input (the page's
// words need energy, not fidelity).
func resampleLinear(in []int16, from, to int) []int16 {
	if from == to || len(in) == 0 {
		return in
	}
	n := int(int64(len(in)) * int64(to) / int64(from))
	out := make([]int16, n)
	for i := range out {
		pos := float64(i) * float64(from) / float64(to)
		j := int(pos)
		frac := pos - float64(j)
		a := float64(in[min(j, len(in)-1)])
		b := float64(in[min(j+1, len(in)-1)])
		out[i] = int16(math.Round(a + (b-a)*frac))
	}
	return out
}

func wavBytes(samples []int16, rate int) []byte {
	var buf bytes.Buffer
	data := 2 * len(samples)
	buf.WriteString("RIFF")
	binary.Write(&buf, binary.LittleEndian, uint32(36+data))
	buf.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)} {
		binary.Write(&buf, binary.LittleEndian, v) // PCM, mono, rate, byte rate, block align, bits
	}
	buf.WriteString("data")
	binary.Write(&buf, binary.LittleEndian, uint32(data))
	binary.Write(&buf, binary.LittleEndian, samples)
	return buf.Bytes()
}

// listeningBot is a bot socket of the test on the page's call, with
// listen=pcm_16000. Its read loop is owned by the test: close (or Cleanup)
// closes the socket and waits for the loop to end.
type listeningBot struct {
	conn *websocket.Conn
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever something arrives
	frames  int
	voiced  int
	maxRMS  float64
	bad     int
	digits  strings.Builder
	readErr error
}

func dialListeningBot(t *testing.T, base, callURL string) *listeningBot {
	t.Helper()
	u, err := url.Parse(base + callURL + "/ws?listen=pcm_16000")
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = "ws"
	conn, _, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if err != nil {
		t.Fatalf("dial the bot socket %s: %v", u, err)
	}
	b := &listeningBot{conn: conn, done: make(chan struct{}), changed: make(chan struct{})}
	go b.read()
	t.Cleanup(b.close)
	return b
}

func (b *listeningBot) read() {
	defer close(b.done)
	for {
		typ, msg, err := b.conn.ReadMessage()
		b.mu.Lock()
		switch {
		case err != nil:
			b.readErr = err
		case typ == websocket.BinaryMessage && len(msg) != 640:
			b.bad++
		case typ == websocket.BinaryMessage:
			var sum float64
			for i := 0; i < len(msg); i += 2 {
				x := float64(int16(binary.LittleEndian.Uint16(msg[i:]))) / 32768
				sum += x * x
			}
			rms := math.Sqrt(sum / float64(len(msg)/2))
			b.frames++
			if rms > speechRMS {
				b.voiced++
			}
			b.maxRMS = max(b.maxRMS, rms)
		default:
			var ev struct {
				Type  string `json:"type"`
				Digit string `json:"digit"`
			}
			if json.Unmarshal(msg, &ev) == nil && ev.Type == "dtmf" {
				b.digits.WriteString(ev.Digit)
			}
		}
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitUntil waits until cond (called under the lock) holds, the socket
// fails, or waitTimeout passes.
func (b *listeningBot) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		b.mu.Lock()
		ok, err, ch := cond(), b.readErr, b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: the bot socket failed: %v", what, err)
		}
		select {
		case <-ch:
		case <-deadline:
			f, v, m, _ := b.audioStats()
			t.Fatalf("waiting for %s: timed out (frames %d, voiced %d, max RMS %.4f, digits %q)", what, f, v, m, b.digitsSoFar())
		}
	}
}

func (b *listeningBot) waitVoice(t *testing.T, voiced int) {
	t.Helper()
	b.waitUntil(t, fmt.Sprintf("%d voiced frames at the bot", voiced), func() bool { return b.voiced >= voiced })
}

func (b *listeningBot) waitDigits(t *testing.T, n int) string {
	t.Helper()
	b.waitUntil(t, fmt.Sprintf("%d dtmf events at the bot", n), func() bool { return b.digits.Len() >= n })
	return b.digitsSoFar()
}

func (b *listeningBot) digitsSoFar() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.digits.String()
}

func (b *listeningBot) audioStats() (frames, voiced int, maxRMS float64, bad int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.frames, b.voiced, b.maxRMS, b.bad
}

func (b *listeningBot) close() {
	b.once.Do(func() {
		b.conn.Close()
		<-b.done
	})
}
