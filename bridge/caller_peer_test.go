package bridge

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/peertest"
	"github.com/voicebridge/voicebridge/media"
)

// rawTrack is the talker's TrackLocal: unlike TrackLocalStaticRTP it keeps
// the payload type of what it writes, so the audio codec (Opus, or PCMU
// or PCMA) and telephone-event share its SSRC and sequence, as a browser's
// or gateway's do.
type rawTrack struct {
	bound   chan struct{}
	once    sync.Once
	mime    string // the audio codec bound
	teClock uint32 // the telephone-event clock used

	mu     sync.Mutex
	ws     webrtc.TrackLocalWriter // guarded by mu
	ssrc   webrtc.SSRC
	opusPT uint8 // the audio codec's payload type
	tePT   uint8
}

func (t *rawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var audio webrtc.RTPCodecParameters
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range ctx.CodecParameters() {
		switch {
		case strings.EqualFold(c.MimeType, t.mime):
			audio = c
			t.opusPT = uint8(c.PayloadType)
		case strings.EqualFold(c.MimeType, "audio/telephone-event") && c.ClockRate == t.teClock:
			t.tePT = uint8(c.PayloadType)
		}
	}
	if audio.MimeType == "" {
		return audio, webrtc.ErrUnsupportedCodec
	}
	t.ws, t.ssrc = ctx.WriteStream(), ctx.SSRC()
	t.once.Do(func() { close(t.bound) })
	return audio, nil
}

func (t *rawTrack) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.ws = nil
	t.mu.Unlock()
	return nil
}
func (t *rawTrack) ID() string                { return "mic" }
func (t *rawTrack) RID() string               { return "" }
func (t *rawTrack) StreamID() string          { return "talker" }
func (t *rawTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// send writes one packet; dtmf selects the telephone-event payload type.
func (t *rawTrack) send(seq uint16, ts uint32, dtmf, marker bool, payload []byte) error {
	t.mu.Lock()
	ws, ssrc, pt := t.ws, t.ssrc, t.opusPT
	if dtmf {
		pt = t.tePT
	}
	t.mu.Unlock()
	if ws == nil {
		return net.ErrClosed
	}
	_, err := ws.WriteRTP(&rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: uint32(ssrc), Marker: marker}, payload)
	return err
}

// talker is a real Pion peer that talks: it offers sendrecv with Opus and
// telephone-event (48000 and 8000, as Chrome does), or with G.711 first
// (newG711Talker), and sends scripted RTP.
type talker struct {
	pc        *webrtc.PeerConnection
	track     *rawTrack
	connected chan struct{}
	once      sync.Once
}

func newTalker(t *testing.T) *talker {
	t.Helper()
	return newTalkerWith(t, webrtc.MimeTypeOpus, 48000, []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000}, PayloadType: 110},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000}, PayloadType: 126},
	})
}

// newG711Talker is a talker offering PCMU or PCMA first (then Opus), with
// telephone-event at 8000, and sending G.711.
func newG711Talker(t *testing.T, c media.Codec) *talker {
	t.Helper()
	mime := map[media.Codec]string{media.CodecPCMU: webrtc.MimeTypePCMU, media.CodecPCMA: webrtc.MimeTypePCMA}[c]
	return newTalkerWith(t, mime, 8000, []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 8000}, PayloadType: webrtc.PayloadType(c.PayloadType())},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000}, PayloadType: 126},
	})
}

func newTalkerWith(t *testing.T, mime string, teClock uint32, codecs []webrtc.RTPCodecParameters) *talker {
	t.Helper()
	pc := peertest.MustPeer(t, codecs, nil)
	tk := &talker{pc: pc, track: &rawTrack{bound: make(chan struct{}), mime: mime, teClock: teClock}, connected: make(chan struct{})}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			tk.once.Do(func() { close(tk.connected) })
		}
	})
	if _, err := pc.AddTransceiverFromTrack(tk.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	return tk
}

// createTalkCall starts a two-way call and returns its id, the talker and
// the answer.
func (b *testBridge) createTalkCall(t *testing.T) (string, *talker, string) {
	t.Helper()
	return b.createTalkCallWith(t, newTalker(t))
}

// createTalkCallWith starts a two-way call with tk.
func (b *testBridge) createTalkCallWith(t *testing.T, tk *talker) (string, *talker, string) {
	t.Helper()
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(peertest.Offer(t, tk.pc)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if err := tk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tk.connected, "the talker to connect")
	waitFor(t, tk.track.bound, "the talker's track to bind")
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	b.waitState(t, id, stateConnected)
	return id, tk, string(body)
}

// sendItem is one scripted packet.
type sendItem struct {
	at      time.Duration // from the start of the script
	seq     uint16
	ts      uint32
	dtmf    bool
	marker  bool
	payload []byte
	frame   int // audio frame index; -1 for DTMF
}

// play sends the script on the 20 ms wall-clock grid (absolute deadlines)
// and returns when each audio frame was sent (zero: never).
func (tk *talker) play(t *testing.T, items []sendItem, frames int) []time.Time {
	t.Helper()
	sent := make([]time.Time, frames)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for _, it := range items {
		if d := time.Until(start.Add(it.at)); d > 0 {
			timer.Reset(d)
			<-timer.C
		}
		if it.frame >= 0 {
			sent[it.frame] = time.Now()
		}
		if err := tk.track.send(it.seq, it.ts, it.dtmf, it.marker, it.payload); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	return sent
}

// wordHz is the tone of word w of the test signal.
func wordHz(w int) float64 { return 400 + 150*float64(w) }

// toneWords encodes frames 20 ms Opus frames of a tone per word of
// wordFrames frames. The signal is advanced by the encoder's lookahead so
// that decoded words start exactly on frame boundaries.
func toneWords(t *testing.T, frames, wordFrames int) [][]byte {
	t.Helper()
	enc, err := media.NewEncoder(media.EncoderConfig{Application: media.AppVoIP, Complexity: 5, Bitrate: 32000, FEC: true, PacketLossPercent: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	la := enc.Lookahead()
	pcm := make([]int16, media.FrameSamples)
	phase := 0.0
	var out [][]byte
	for k := range frames {
		for i := range pcm {
			n := k*media.FrameSamples + i + la
			w := min(n/(wordFrames*media.FrameSamples), frames/wordFrames-1)
			phase += 2 * math.Pi * wordHz(w) / media.SampleRate
			pcm[i] = int16(6000 * math.Sin(phase))
		}
		buf := make([]byte, 1500)
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n])
	}
	return out
}

// keyPress is a scripted RFC 4733 key press.
type keyPress struct {
	code    byte
	frame   int  // the audio frame it starts at (its RTP timestamp)
	updates int  // packets before the end, 20 ms apart
	marker  bool // marker bit on the first packet
	endLost bool // its three end packets are lost
}

// wantMS is the duration the bot should get: the end packets carry one more
// 20 ms than the last update.
func (k keyPress) wantMS() int64 {
	if k.endLost {
		return int64(k.updates) * 20
	}
	return int64(k.updates+1) * 20
}

// keyPackets returns the RFC 4733 packets of k, 20 ms apart from its start,
// at Opus's clock.
func keyPackets(k keyPress, ts0 uint32, start time.Duration) []sendItem {
	return keyPacketsAt(media.FrameSamples, k, ts0, start)
}

// keyPacketsAt is keyPackets at a clock of step units per 20 ms.
func keyPacketsAt(step int, k keyPress, ts0 uint32, start time.Duration) []sendItem {
	var items []sendItem
	ts := ts0 + uint32(k.frame*step)
	at := start + time.Duration(k.frame)*media.FrameDuration
	for u := 1; u <= k.updates; u++ {
		d := uint16(u * step)
		items = append(items, sendItem{at: at, ts: ts, dtmf: true, marker: k.marker && u == 1, payload: []byte{k.code, 10, byte(d >> 8), byte(d)}, frame: -1})
		at += media.FrameDuration
	}
	if !k.endLost {
		d := uint16((k.updates + 1) * step)
		for range 3 {
			items = append(items, sendItem{at: at, ts: ts, dtmf: true, payload: []byte{k.code, 0x80 | 10, byte(d >> 8), byte(d)}, frame: -1})
			at += media.FrameDuration
		}
	}
	return items
}

// listenBot is a bot socket with ?listen=: it keeps the binary frames with
// their arrival times and the events.
type listenBot struct {
	conn   *websocket.Conn
	events chan map[string]any
	done   chan struct{}
	gate   chan struct{} // the reader waits on it while paused
	rate   int

	mu     sync.Mutex
	frames [][]byte // guarded by mu
	times  []time.Time
	notify chan struct{}
}

// dialListen opens a bot socket with listen=pcm_RATE. paused: the bot does
// not read until resume; its receive buffer is made small so that what it
// does not read backs up into the bridge.
func (b *testBridge) dialListen(t *testing.T, id string, rate int, paused bool) *listenBot {
	t.Helper()
	u := "ws" + strings.TrimPrefix(b.url, "http") + "/v1/calls/" + id + "/ws?listen=pcm_" + strconv.Itoa(rate)
	d := *websocket.DefaultDialer
	if paused {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		d.NetDialContext = nd.DialContext
	}
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	lb := &listenBot{conn: conn, events: make(chan map[string]any, 1024), done: make(chan struct{}), gate: make(chan struct{}), rate: rate, notify: make(chan struct{}, 1)}
	if !paused {
		close(lb.gate)
	}
	go func() {
		defer close(lb.done)
		defer close(lb.events)
		<-lb.gate
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if typ == websocket.BinaryMessage {
				lb.mu.Lock()
				lb.frames = append(lb.frames, msg)
				lb.times = append(lb.times, time.Now())
				lb.mu.Unlock()
				select {
				case lb.notify <- struct{}{}:
				default:
				}
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal(msg, &ev); err != nil {
				t.Errorf("bot event %s: %v", msg, err)
				return
			}
			lb.events <- ev
		}
	}()
	t.Cleanup(func() {
		select {
		case <-lb.gate:
		default:
			close(lb.gate)
		}
		conn.Close()
		<-lb.done
	})
	return lb
}

// resume lets a paused bot read.
func (lb *listenBot) resume() { close(lb.gate) }

// waitFrames waits until the bot has at least n frames and returns them
// with their arrival times.
func (lb *listenBot) waitFrames(t *testing.T, n int) ([][]byte, []time.Time) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		lb.mu.Lock()
		if len(lb.frames) >= n {
			f, ts := append([][]byte(nil), lb.frames...), append([]time.Time(nil), lb.times...)
			lb.mu.Unlock()
			return f, ts
		}
		got := len(lb.frames)
		lb.mu.Unlock()
		select {
		case <-lb.notify:
		case <-deadline:
			t.Fatalf("bot at %d Hz got %d frames, want %d", lb.rate, got, n)
		}
	}
}

// nextEvent returns the next event whose type is typ, skipping others.
func (lb *listenBot) nextEvent(t *testing.T, typ string, within time.Duration) (map[string]any, bool) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-lb.events:
			if !ok {
				t.Fatal("bot socket closed")
			}
			if ev["type"] == typ {
				return ev, true
			}
		case <-timeout:
			return nil, false
		}
	}
}

// pcm16 decodes a PCM16LE message.
func pcm16(b []byte) []int16 {
	x := make([]int16, len(b)/2)
	for i := range x {
		x[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return x
}

// goertzel is the share of x's energy at f (rate fs): near 1 for a pure tone
// at f.
func goertzel(x []int16, f, fs float64) float64 {
	xf := make([]float64, len(x))
	var e float64
	for i, v := range x {
		xf[i] = float64(v)
		e += xf[i] * xf[i]
	}
	if e == 0 {
		return 0
	}
	return 2 * goertzelPower(xf, f, fs) / (float64(len(x)) * e)
}

// scrape returns the value of every sample line of /metrics starting with
// prefix (name plus labels), summed.
func (b *testBridge) scrape(t *testing.T, prefix string) float64 {
	t.Helper()
	_, body := b.do(t, "GET", "/metrics", "", nil)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// percentile returns the p-th percentile (0..100) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
