package main

// The IVR against the real bridge (in-process, embedded TTS) and a real Pion
// caller that talks (an Opus tone) and presses a key (RFC 4733 packets on its
// audio SSRC, as a browser sends them). A digit in must come out as speech:
// the IVR says "You pressed 5." and the bridge puts speech on the wire
// (speaking, then done, seen by a second bot socket of the test).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/peertest"
	"go.uber.org/goleak"

	"github.com/voicebridge/voicebridge/bridge"
	"github.com/voicebridge/voicebridge/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait; a failure timeout, never an assertion.
const waitTimeout = 20 * time.Second

// toneAmp is the caller's tone amplitude: RMS 0.1/√2, -23.0 dBFS.
const toneAmp = 0.1

func TestIVRAnswersAKeyWithSpeech(t *testing.T) {
	base := startBridge(t)
	caller := newCaller(t)
	callID := caller.call(t, base)
	caller.start(t)

	// The test's own bot socket, to watch the wire's events.
	watch := dialWatcher(t, base, callID)

	logs := &lockedBuffer{}
	ivr := &IVR{Greeting: "Hello.", LevelEvery: 500 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	u, err := botSocketURL(base, callID, "pcm_16000")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- join(ctx, ivr, u, "") }()
	defer func() {
		cancel()
		if err := <-ran; err != nil && err != context.Canceled {
			t.Errorf("join: %v", err)
		}
		if t.Failed() {
			t.Logf("IVR log:\n%s", logs.String())
		}
	}()

	// The greeting is spoken, then the caller presses 5.
	watch.waitFor(t, "the greeting's done", func(evs []string) bool { return count(evs, "done") >= 1 })
	before := len(watch.events())
	caller.press('5')
	waitLog(t, logs, "the IVR to hear the key", `msg=key digit=5 `)
	waitLog(t, logs, "the IVR to answer", `msg=said text="You pressed 5."`)
	watch.waitFor(t, "speech for the answer on the wire", func(evs []string) bool {
		return count(evs[before:], "dtmf:5") == 1 && count(evs[before:], "speaking") >= 1 && count(evs[before:], "done") >= 1
	})
	evs := watch.events()[before:]
	if i, j := index(evs, "dtmf:5"), index(evs, "speaking"); j < i {
		t.Errorf("events after the key press %v: speaking before the dtmf event", evs)
	}

	// The caller's tone reaches the IVR at its level: -23.0 dBFS.
	waitLog(t, logs, "a caller audio level line", `msg="caller audio"`)
	re := regexp.MustCompile(`msg="caller audio" frames=(\d+) rms_dbfs=(-?[0-9.]+)`)
	var best float64 = math.Inf(-1)
	for _, m := range re.FindAllStringSubmatch(logs.String(), -1) {
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			best = max(best, v)
		}
	}
	if best < -26 || best > -20 {
		t.Errorf("loudest caller level logged %.1f dBFS, want about -23 (a 0.1 sine)\n%s", best, logs.String())
	}
	t.Logf("events after the key: %v; loudest caller level %.1f dBFS", evs, best)
}

// TestIVRServesBotURL runs the IVR as a -bot-url server: the test connects
// the bridge's bot socket of a call to it, as the bridge does for a SIP call
// (call_id, from, to and listen in the query), relaying both ways.
func TestIVRServesBotURL(t *testing.T) {
	base := startBridge(t)
	caller := newCaller(t)
	callID := caller.call(t, base)
	caller.start(t)
	watch := dialWatcher(t, base, callID)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ivr := &IVR{Log: slog.New(slog.NewTextHandler(logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveBots(ctx, ln, ivr) }()

	bridgeSide, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/calls/"+callID+"/ws?listen=pcm_16000", nil)
	if err != nil {
		t.Fatal(err)
	}
	q := "?call_id=" + callID + "&from=sip%3Aalice%40example.com&to=sip%3Aivr%40example.com&listen=pcm_16000"
	botSide, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/bot"+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	var relays sync.WaitGroup
	for _, p := range [][2]*websocket.Conn{{bridgeSide, botSide}, {botSide, bridgeSide}} {
		relays.Add(1)
		go func(from, to *websocket.Conn) {
			defer relays.Done()
			defer to.Close() // one side gone: end the other
			for {
				typ, msg, err := from.ReadMessage()
				if err != nil || to.WriteMessage(typ, msg) != nil {
					return
				}
			}
		}(p[0], p[1])
	}
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serveBots: %v", err)
		}
		bridgeSide.Close()
		relays.Wait()
		if t.Failed() {
			t.Logf("IVR log:\n%s", logs.String())
		}
	}()

	waitLog(t, logs, "the IVR to take the call", "msg=call call_id="+callID+" from=sip:alice@example.com to=sip:ivr@example.com listen=pcm_16000")
	before := len(watch.events())
	caller.press('#')
	waitLog(t, logs, "the IVR to answer", `call_id=`+callID+` text="You pressed pound."`)
	watch.waitFor(t, "speech for the answer on the wire", func(evs []string) bool {
		return count(evs[before:], "dtmf:#") == 1 && count(evs[before:], "speaking") >= 1 && count(evs[before:], "done") >= 1
	})
}

func TestAnswer(t *testing.T) {
	for digit, want := range map[string]string{"5": "You pressed 5.", "0": "You pressed 0.", "*": "You pressed star.", "#": "You pressed pound.", "D": "You pressed D."} {
		if got := Answer(digit); got != want {
			t.Errorf("Answer(%q) = %q, want %q", digit, got, want)
		}
	}
}

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of -call"},
		{[]string{"-call", "x", "-serve", "127.0.0.1:0"}, "exactly one of -call"},
		{[]string{"-call", "x", "-listen", "pcm_44100"}, `-listen "pcm_44100"`},
		{[]string{"-call", "x", "-bridge", "ftp://h"}, "want an http:// or https:// URL"},
		{[]string{"-call", "x", "-bridge", "http://user:secret@h:1"}, "without credentials"},
		{[]string{"-call", "x", "extra"}, "unexpected arguments"},
		{[]string{"-call", "a/b"}, "not a call id"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, "", &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %q: error %v, want one containing %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("run %q: the error shows the URL's password: %v", tc.args, err)
		}
	}
	u, err := botSocketURL("https://bridge.example/base/", "AB C", "pcm_8000")
	if err != nil || u != "wss://bridge.example/base/v1/calls/AB%20C/ws?listen=pcm_8000" {
		t.Errorf("botSocketURL = %q, %v", u, err)
	}
}

// ---- the bridge -------------------------------------------------------------

// startBridge runs the bridge on its embedded TTS behind httptest and returns
// its base URL. Cleanup shuts it down.
func startBridge(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	srv, err := bridge.New(ctx, bridge.Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("bridge Shutdown: %v", err)
		}
	})
	return hs.URL
}

// ---- the caller: a Pion peer that talks and presses keys ----------------------

// callerTrack keeps the payload type of each packet (TrackLocalStaticRTP
// would rewrite it), so Opus and telephone-event share one SSRC and
// sequence, as in a browser's stream.
type callerTrack struct {
	mu     sync.Mutex
	w      webrtc.TrackLocalWriter // guarded by mu
	ssrc   uint32
	opusPT uint8
	tePT   uint8
	bound  chan struct{}
	once   sync.Once
}

func (c *callerTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var opus webrtc.RTPCodecParameters
	for _, p := range ctx.CodecParameters() {
		switch {
		case strings.EqualFold(p.MimeType, webrtc.MimeTypeOpus):
			opus, c.opusPT = p, uint8(p.PayloadType)
		case strings.EqualFold(p.MimeType, "audio/telephone-event") && p.ClockRate == 48000:
			c.tePT = uint8(p.PayloadType)
		}
	}
	if opus.MimeType == "" || c.tePT == 0 {
		return opus, webrtc.ErrUnsupportedCodec
	}
	c.w, c.ssrc = ctx.WriteStream(), uint32(ctx.SSRC())
	c.once.Do(func() { close(c.bound) })
	return opus, nil
}

func (c *callerTrack) Unbind(webrtc.TrackLocalContext) error {
	c.mu.Lock()
	c.w = nil
	c.mu.Unlock()
	return nil
}
func (c *callerTrack) ID() string                { return "mic" }
func (c *callerTrack) RID() string               { return "" }
func (c *callerTrack) StreamID() string          { return "caller" }
func (c *callerTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

func (c *callerTrack) write(h rtp.Header, dtmf bool, payload []byte) {
	c.mu.Lock()
	w := c.w
	h.Version, h.SSRC, h.PayloadType = 2, c.ssrc, c.opusPT
	if dtmf {
		h.PayloadType = c.tePT
	}
	c.mu.Unlock()
	if w != nil {
		_, _ = w.WriteRTP(&h, payload) // a lost packet is what RTP is for
	}
}

type caller struct {
	pc        *webrtc.PeerConnection
	track     *callerTrack
	connected chan struct{}
	keys      chan byte
	stop      chan struct{}
	done      chan struct{}
}

func newCaller(t *testing.T) *caller {
	t.Helper()
	pc := peertest.MustPeer(t, []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000}, PayloadType: 110},
	}, nil)
	c := &caller{pc: pc, track: &callerTrack{bound: make(chan struct{})}, connected: make(chan struct{}),
		keys: make(chan byte, 8), stop: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c.connected) })
		}
	})
	// The bot's voice: read and dropped, so the RTCP/NACK machinery runs.
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
		}
	})
	if _, err := pc.AddTransceiverFromTrack(c.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	return c
}

// call starts a two-way call from this peer (WHEP shape) and returns its id.
func (c *caller) call(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/v1/calls", "application/sdp", strings.NewReader(peertest.Offer(t, c.pc)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/calls: %d %s", resp.StatusCode, body)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	for what, ch := range map[string]chan struct{}{"the caller to connect": c.connected, "the caller's track to bind": c.track.bound} {
		select {
		case <-ch:
		case <-time.After(waitTimeout):
			t.Fatalf("waiting for %s", what)
		}
	}
	return strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
}

// start runs the caller's sender: a 440 Hz tone in 20 ms Opus frames on
// absolute deadlines; a pressed key replaces five frames by RFC 4733 packets
// (100 ms, marker on the first, three end packets), as Chrome does.
// Cleanup stops it and waits.
func (c *caller) start(t *testing.T) {
	t.Helper()
	enc, err := media.NewEncoder(media.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	go c.send(enc)
	t.Cleanup(func() {
		close(c.stop)
		<-c.done
		enc.Close()
	})
}

func (c *caller) press(key byte) { c.keys <- key }

func (c *caller) send(enc media.Encoder) {
	defer close(c.done)
	const frame = 960 // 20 ms at 48 kHz
	pcm := make([]int16, frame)
	out := make([]byte, 1500)
	var seq uint16 = 1000
	var ts uint32 = 5000
	var phase float64
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	var key byte
	var keyTS uint32
	var keyFrames int // sent so far of the current key's 5 + 3 end packets
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		if keyFrames == 0 {
			select {
			case key = <-c.keys:
				keyTS = ts
			default:
			}
		}
		if key != 0 {
			code := strings.IndexByte("0123456789*#ABCD", key)
			n := min(keyFrames+1, 5)
			end := keyFrames >= 4
			payload := []byte{byte(code), 10, 0, 0}
			if end {
				payload[1] |= 0x80
			}
			binary.BigEndian.PutUint16(payload[2:], uint16(n*frame))
			c.track.write(rtp.Header{SequenceNumber: seq, Timestamp: keyTS, Marker: keyFrames == 0}, true, payload)
			keyFrames++
			if keyFrames == 7 { // 5 packets (the last with E) + 2 more end packets
				key, keyFrames = 0, 0
			}
		} else {
			for i := range pcm {
				pcm[i] = int16(toneAmp * 32767 * math.Sin(phase))
				phase += 2 * math.Pi * 440 / 48000
			}
			if n, err := enc.Encode(pcm, out); err == nil {
				c.track.write(rtp.Header{SequenceNumber: seq, Timestamp: ts}, false, out[:n])
			}
		}
		seq++
		ts += frame
		next = next.Add(20 * time.Millisecond)
		timer.Reset(time.Until(next))
	}
}

// ---- a watching bot socket ----------------------------------------------------

type watcher struct {
	conn *websocket.Conn
	done chan struct{}

	mu      sync.Mutex
	evs     []string // "speaking", "done", "dtmf:5", ...
	changed chan struct{}
	err     error
}

func dialWatcher(t *testing.T, base, callID string) *watcher {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/calls/"+callID+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{conn: conn, done: make(chan struct{}), changed: make(chan struct{})}
	go w.read()
	t.Cleanup(func() { conn.Close(); <-w.done })
	return w
}

func (w *watcher) read() {
	defer close(w.done)
	for {
		_, msg, err := w.conn.ReadMessage()
		w.mu.Lock()
		if err != nil {
			w.err = err
		} else {
			var ev event
			if json.Unmarshal(msg, &ev) == nil {
				name := ev.Type
				if ev.Type == "dtmf" {
					name += ":" + ev.Digit
				}
				w.evs = append(w.evs, name)
			}
		}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (w *watcher) events() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.evs...)
}

func (w *watcher) waitFor(t *testing.T, what string, cond func([]string) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		w.mu.Lock()
		ok, err, ch := cond(w.evs), w.err, w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: the watching socket failed: %v (events %v)", what, err, w.events())
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waiting for %s: timed out (events %v)", what, w.events())
		}
	}
}

func count(evs []string, name string) int {
	n := 0
	for _, e := range evs {
		if e == name {
			n++
		}
	}
	return n
}

func index(evs []string, name string) int {
	for i, e := range evs {
		if e == name {
			return i
		}
	}
	return -1
}

// ---- logs ---------------------------------------------------------------------

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog polls the IVR's log for sub (the log has no change signal; the
// poll interval is not an assertion).
func waitLog(t *testing.T, logs *lockedBuffer, what, sub string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(logs.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %q not in the IVR's log:\n%s", what, sub, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
