package web_test

// The demo page, tested in a real browser: Debian's chromium, driven with
// chromedp, against the bridge running on the embedded TTS. The assertions
// read the page's own state (window.voicebridgeDemo: its getStats numbers and
// its log of bot WebSocket events), not the DOM.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// waitTimeout bounds every wait on the page. It is a failure timeout only:
// on a healthy machine each wait ends in well under a second or two.
const waitTimeout = 30 * time.Second

// chromiumPath returns Debian's chromium, or skips the test when it is not
// installed (make test and make deps-test install it); under CI a missing
// chromium fails instead.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	const msg = "chromium is not installed: the browser test needs Debian's chromium (make deps-test installs it)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg) // in CI the browser test must run, never vanish as a skip
	}
	t.Skip(msg)
	return ""
}

// page is one chromium tab under test, with what the page logged.
type page struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	console    []string // console messages, for failure reports
	exceptions []string // uncaught exceptions: any fails the test
}

// newPage starts a fresh headless chromium (its own user-data-dir, the flags
// of issue 6) and opens a tab. Cleanup closes the browser and waits for it,
// so no chromedp goroutine or chromium process outlives the test.
func newPage(t *testing.T, width, height int, extra ...chromedp.ExecAllocatorOption) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits until chromium has exited and its goroutines ended
	})
	p := &page{t: t, ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			p.mu.Lock()
			p.console = append(p.console, string(ev.Type)+": "+strings.Join(parts, " "))
			p.mu.Unlock()
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			p.mu.Lock()
			p.exceptions = append(p.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
			p.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(p.checkExceptions)
	return p
}

func (p *page) checkExceptions() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.exceptions {
		p.t.Errorf("uncaught exception in the page: %s", e)
	}
}

// fail reports what the page knows (its state, events and console) and stops the test.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	dump, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`JSON.stringify({state: voicebridgeDemo.state, stats: voicebridgeDemo.stats, events: voicebridgeDemo.events}, null, 1)`))
	if err != nil {
		dump = "(page state unavailable: " + err.Error() + ")"
	}
	p.mu.Lock()
	console := strings.Join(p.console, "\n")
	p.mu.Unlock()
	p.t.Fatalf("%s\npage state: %s\nconsole:\n%s", fmt.Sprintf(format, args...), dump, console)
}

// do runs actions, failing the test with the page's state on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// eval evaluates expr in the page and decodes its JSON value into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls the JavaScript predicate until it is truthy, failing the test
// with the page's state after waitTimeout.
func (p *page) waitFor(what, predicate string) {
	p.t.Helper()
	p.waitForWithin(what, predicate, waitTimeout)
}

func (p *page) waitForWithin(what, predicate string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.fail("waiting for %s (%s): %v", what, predicate, err)
	}
}

// demoStats mirrors window.voicebridgeDemo.stats.
type demoStats struct {
	PacketsReceived   int      `json:"packetsReceived"`
	PacketsLost       int      `json:"packetsLost"`
	Jitter            float64  `json:"jitter"`
	AudioLevel        float64  `json:"audioLevel"`
	TotalAudioEnergy  float64  `json:"totalAudioEnergy"`
	Codec             string   `json:"codec"`
	SpeakToSpeakingMs *float64 `json:"speakToSpeakingMs"`
	SpeakToAudioMs    *float64 `json:"speakToAudioMs"`
}

// demoState mirrors the fields of window.voicebridgeDemo.state the test reads.
type demoState struct {
	Phase        string `json:"phase"`
	CallID       string `json:"callId"`
	CallURL      string `json:"callURL"`
	WSState      string `json:"wsState"`
	AuthRequired bool   `json:"authRequired"`
	Error        string `json:"error"`
	Marks        string `json:"marks"`
}

func (p *page) stats() demoStats { return eval[demoStats](p, `voicebridgeDemo.stats`) }
func (p *page) state() demoState { return eval[demoState](p, `voicebridgeDemo.state`) }
func countEvents(typ string) string {
	b, _ := json.Marshal(typ)
	return fmt.Sprintf(`voicebridgeDemo.events.filter(e => e.type === %s).length`, b)
}

// visible reports whether the element with this id takes up room on the page.
func (p *page) visible(id string) bool {
	p.t.Helper()
	b, _ := json.Marshal(id)
	return eval[bool](p, fmt.Sprintf(`document.getElementById(%s).getClientRects().length > 0`, b))
}

// setText replaces the text box's content as a user would (input event included).
func (p *page) setText(text string) {
	p.t.Helper()
	b, _ := json.Marshal(text)
	eval[bool](p, fmt.Sprintf(`(() => { const el = document.getElementById('text'); el.value = %s; el.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, b))
}

// screenshot saves a PNG of the page under artifacts/ at the repository root.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.fail("screenshot: %v", err)
	}
	dir := filepath.Join("..", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	p.t.Logf("screenshot: %s", abs)
	return abs
}

// waitQuiet waits until the page's totalAudioEnergy has not risen for quiet
// while its stats keep updating and packets keep arriving (the bridge sends
// silence frames while idle, so packet counts alone prove nothing).
func (p *page) waitQuiet(what string, quiet, timeout time.Duration) {
	p.t.Helper()
	eval[bool](p, `(window.__quiet = null, true)`)
	p.waitForWithin(what, fmt.Sprintf(`(() => {
		const s = voicebridgeDemo.stats, now = performance.now();
		const q = window.__quiet;
		if (!q || s.totalAudioEnergy - q.energy > 1e-6) {
			window.__quiet = {energy: s.totalAudioEnergy, packets: s.packetsReceived, since: now};
			return false;
		}
		return now - q.since >= %d && s.packetsReceived > q.packets;
	})()`, quiet.Milliseconds()), timeout)
}

func TestDemoPageCall(t *testing.T) {
	srv := startBridge(t, "")
	p := newPage(t, 1100, 1400)
	start := time.Now()

	p.do("open the page", chromedp.Navigate(srv.URL+"/"))
	p.waitFor("the page to load /config.json", `voicebridgeDemo.state.phase === 'idle'`)
	if st := p.state(); st.AuthRequired || st.Error != "" {
		t.Fatalf("without -api-token: state %+v, want no auth and no error", st)
	}
	if p.visible("token") {
		t.Error("the token field is shown although the server needs no token")
	}

	// Out-of-range settings are refused in words before anything is sent, as the server would.
	p.do("type an out-of-range stability",
		chromedp.SetValue(chromedp.ID("stability"), "1.5"),
		chromedp.Click(chromedp.ID("connect")))
	if st := p.state(); st.Phase != "idle" || !strings.Contains(st.Error, "Stability must be between 0 and 1") {
		t.Errorf("stability 1.5: state %+v, want idle and a stability error", st)
	}
	p.do("fix the stability", chromedp.SetValue(chromedp.ID("stability"), "0.5"))

	// Connect: a real click, so the page has a user gesture for playback.
	p.do("click Connect", chromedp.Click(chromedp.ID("connect")))
	p.waitFor("the call to connect", `voicebridgeDemo.state.phase === 'connected' && voicebridgeDemo.state.wsState === 'open'`)
	p.waitFor("RTP packets to arrive", `voicebridgeDemo.stats.packetsReceived > 0`)
	connected := time.Since(start)

	// Speak: the prefilled Arabic sentence, flushed.
	p.do("click Speak", chromedp.Click(chromedp.ID("speak")))
	p.waitFor("the speaking event", countEvents("speaking")+` >= 1`)
	p.waitFor("inbound audio energy", `voicebridgeDemo.stats.totalAudioEnergy > 0`)
	p.waitFor("the done event", countEvents("done")+` >= 1`)
	p.waitFor("the Speak→first audio measurement", `voicebridgeDemo.stats.speakToAudioMs !== null`)
	s := p.stats()
	if s.PacketsReceived <= 0 || s.TotalAudioEnergy <= 0 {
		p.fail("after Speak: stats %+v, want packets and audio energy", s)
	}
	if !strings.Contains(strings.ToLower(s.Codec), "opus") {
		t.Errorf("codec %q, want audio/opus", s.Codec)
	}
	t.Logf("Speak → speaking event: %v ms; Speak → first audio (totalAudioEnergy rose): %v ms; packets %d, lost %d, jitter %.1f ms",
		deref(s.SpeakToSpeakingMs), deref(s.SpeakToAudioMs), s.PacketsReceived, s.PacketsLost, s.Jitter*1000)
	for _, typ := range []string{"speaking", "done"} {
		if n := eval[int](p, `document.querySelectorAll('#log li.`+typ+`').length`); n < 1 {
			t.Errorf("the log shows no %q line", typ)
		}
	}
	p.screenshot("web-demo.png")

	// Stream like an LLM: word by word over the bot WebSocket, then flush.
	p.waitQuiet("the first sentence to end", 300*time.Millisecond, waitTimeout)
	speaking, done := eval[int](p, countEvents("speaking")), eval[int](p, countEvents("done"))
	p.do("click Stream like an LLM", chromedp.Click(chromedp.ID("stream")))
	p.waitFor("speaking after streaming", fmt.Sprintf(`%s > %d`, countEvents("speaking"), speaking))
	p.waitFor("done after streaming", fmt.Sprintf(`%s > %d`, countEvents("done"), done))

	// Interrupt: a long text, cut once speech is audible. The audio must stop
	// (energy flat) long before the text could have been spoken, while
	// packets keep flowing as silence.
	long := strings.TrimSpace(strings.Repeat("مرحبا بك في فصيح كيف يمكنني مساعدتك اليوم. ", 12))
	p.setText(long)
	p.waitQuiet("the streamed sentence to end", 300*time.Millisecond, waitTimeout)
	speaking = eval[int](p, countEvents("speaking"))
	p.do("click Speak (long text)", chromedp.Click(chromedp.ID("speak")))
	p.waitFor("speaking (long text)", fmt.Sprintf(`%s > %d`, countEvents("speaking"), speaking))
	p.waitFor("audio (long text)", `voicebridgeDemo.stats.speakToAudioMs !== null`)
	before := p.stats()
	p.do("click Interrupt", chromedp.Click(chromedp.ID("interrupt")))
	p.waitFor("the clear to be acknowledged", `voicebridgeDemo.events.some(e => e.type === 'sent' && e.detail === 'clear')`)
	// Twelve sentences take far longer than this to speak: a quiet second
	// within it means the interrupt stopped the audio.
	p.waitQuiet("the audio to stop after Interrupt", time.Second, 8*time.Second)
	after := p.stats()
	if after.PacketsReceived <= before.PacketsReceived {
		p.fail("packets stopped after Interrupt (%d → %d): the call died instead of going silent", before.PacketsReceived, after.PacketsReceived)
	}
	p.screenshot("web-demo-interrupted.png")

	// Hang up: the page DELETEs the call and says so.
	callURL := p.state().CallURL
	p.do("click Hang up", chromedp.Click(chromedp.ID("hangup")))
	p.waitFor("the call to end", `voicebridgeDemo.state.phase === 'closed'`)
	if st := p.state(); st.Error != "" {
		t.Errorf("after hang-up the page shows an error: %q", st.Error)
	}
	srv.assertHungUp(t, callURL, "hangup")

	// At a phone's width the page still fits: nothing wider than the viewport.
	p.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px the page is %d px wide: it scrolls sideways", w)
	}
	p.screenshot("web-demo-phone.png")
	t.Logf("connect took %v; whole browser test %v", connected.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func TestDemoPageAsksForToken(t *testing.T) {
	const token = "page-test-token-5b1f0c"
	srv := startBridge(t, token)
	// The token is never in anything the server hands the browser unasked.
	for _, path := range []string{"/", "/app.js", "/style.css", "/config.json"} {
		if body := srv.get(t, path); strings.Contains(body, token) {
			t.Errorf("%s contains the API token", path)
		}
	}

	p := newPage(t, 1100, 1400)
	p.do("open the page", chromedp.Navigate(srv.URL+"/"))
	p.waitFor("the page to load /config.json", `voicebridgeDemo.state.phase === 'idle'`)
	if !p.state().AuthRequired {
		t.Fatal("config.json says auth_required but the page did not notice")
	}
	if !p.visible("token") {
		p.fail("the server needs a token but the page does not show the token field")
	}
	if typ := eval[string](p, `document.getElementById('token').type`); typ != "password" {
		t.Errorf("token input type %q, want password", typ)
	}

	// No token: the page asks for it, in words, and sends nothing.
	p.do("Connect without a token", chromedp.Click(chromedp.ID("connect")))
	if st := p.state(); st.Phase != "idle" || !strings.Contains(st.Error, "needs an API token") {
		t.Errorf("without a token: state %+v, want idle and a request for the token", st)
	}

	// A wrong token: the server's 401 is shown in words.
	p.do("type a wrong token", chromedp.SendKeys(chromedp.ID("token"), "wrong"), chromedp.Click(chromedp.ID("connect")))
	p.waitFor("the 401 to be shown", `voicebridgeDemo.state.phase === 'idle' && voicebridgeDemo.state.error.includes('refused the API token')`)

	// The right token: the call connects with the chosen settings, the bot
	// WebSocket opens with ?token= (its events arrive), and the token stays in
	// this tab only.
	eval[bool](p, `(document.getElementById('token').select(), true)`) // typing replaces the wrong token
	p.do("choose settings and type the right token",
		chromedp.SetValue(chromedp.ID("format"), "pcm_16000"),
		chromedp.SetValue(chromedp.ID("stability"), "0.8"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("connect")))
	p.waitFor("the call to connect", `voicebridgeDemo.state.phase === 'connected' && voicebridgeDemo.state.wsState === 'open'`)
	if info, _ := srv.callInfo(t, p.state().CallURL); info.OutputFormat != "pcm_16000" {
		t.Errorf("the call's output_format is %q, want the chosen pcm_16000", info.OutputFormat)
	}
	if st := p.state(); st.Error != "" {
		t.Errorf("connected, but the page still shows %q", st.Error)
	}
	if got := eval[string](p, `sessionStorage.getItem('voicebridge.token') || ''`); got != token {
		t.Errorf("sessionStorage token %q, want the typed one", got)
	}
	if n := eval[int](p, `localStorage.length`); n != 0 {
		t.Errorf("localStorage has %d items; the token must not outlive the tab", n)
	}
	p.do("press Ctrl+Enter in the text box", chromedp.Focus(chromedp.ID("text")),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	p.waitFor("the speaking event", countEvents("speaking")+` >= 1`)
	p.waitFor("inbound audio energy", `voicebridgeDemo.stats.totalAudioEnergy > 0`)
	p.waitFor("the done event", countEvents("done")+` >= 1`)
	p.screenshot("web-demo-token.png")

	// Leaving the page hangs up too: a keepalive DELETE, with the token.
	callURL := p.state().CallURL
	if state, _, _ := srv.callState(t, callURL); state != "connected" {
		t.Fatalf("before leaving the page the call is %q, want connected", state)
	}
	p.do("leave the page", chromedp.Navigate("about:blank"))
	srv.assertHungUp(t, callURL, "")
}

func deref(v *float64) any {
	if v == nil {
		return "n/a"
	}
	return *v
}
