package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hraban/opus"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
	"github.com/zaf/g711"
)

// fakeBridge is a tiny stand-in for voicebridge, enough to test the
// receivers: it answers offers with a Pion peer on loopback in the offer's
// codec (Opus or PCMU) and sends one packet every 20 ms, silence while idle
// (Opus: a 3-byte frame; PCMU: 160 × 0xff) and a 440 Hz tone for 25 frames
// after each text, marker on the first. Each caller packet it receives goes
// to a listening bot WebSocket as one 640-byte binary message.
type fakeBridge struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	calls map[string]*fakeCall
	n     int
}

type fakeCall struct {
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	pcmu   bool
	speak  chan int // frames of tone to send
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sender
	rxWG   sync.WaitGroup // the caller track's reader

	wsMu sync.Mutex
	ws   *websocket.Conn // a listening bot; guarded by wsMu, which also serializes writes
}

func newFakeBridge(t *testing.T) *fakeBridge {
	f := &fakeBridge{t: t, calls: map[string]*fakeCall{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/calls", f.create)
	mux.HandleFunc("POST /v1/calls/{id}/text", func(w http.ResponseWriter, r *http.Request) {
		if c := f.get(r.PathValue("id")); c != nil {
			c.speak <- 25
			w.WriteHeader(http.StatusAccepted)
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("GET /v1/calls/{id}/ws", f.ws)
	mux.HandleFunc("DELETE /v1/calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		c := f.calls[r.PathValue("id")]
		delete(f.calls, r.PathValue("id"))
		f.mu.Unlock()
		if c != nil {
			c.close()
		}
		w.WriteHeader(http.StatusNoContent)
	})
	f.srv = httptest.NewServer(mux)
	return f
}

func (f *fakeBridge) get(id string) *fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeBridge) close() {
	f.srv.Close()
	f.mu.Lock()
	calls := f.calls
	f.calls = nil
	f.mu.Unlock()
	for _, c := range calls {
		c.close()
	}
}

func (c *fakeCall) close() {
	c.cancel()
	c.wg.Wait()
	_ = c.pc.Close()
	c.rxWG.Wait()
}

func (f *fakeBridge) create(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != "application/sdp" {
		http.Error(w, "not application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.LoggerFactory = quietLogger
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	pcmu := strings.Contains(string(body), "PCMU/8000")
	capability := codecParams(media.CodecOpus).RTPCodecCapability
	if pcmu {
		capability = codecParams(media.CodecPCMU).RTPCodecCapability
	}
	track, _ := webrtc.NewTrackLocalStaticRTP(capability, "audio", "fake")
	if _, err := pc.AddTrack(track); err != nil {
		pc.Close()
		http.Error(w, err.Error(), 500)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &fakeCall{pc: pc, track: track, pcmu: pcmu, speak: make(chan int, 4), cancel: cancel}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.rxWG.Go(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				c.wsMu.Lock()
				if c.ws != nil {
					_ = c.ws.WriteMessage(websocket.BinaryMessage, make([]byte, 640))
				}
				c.wsMu.Unlock()
			}
		})
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)}); err != nil {
		pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer, _ := pc.CreateAnswer(nil)
	gathered := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(answer)
	<-gathered
	c.wg.Go(func() { c.send(ctx, f.t) })
	f.mu.Lock()
	f.n++
	id := fmt.Sprintf("c%d", f.n)
	f.calls[id] = c
	f.mu.Unlock()
	w.Header().Set("Location", "/v1/calls/"+id)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

// send paces packets on an absolute 20 ms grid.
func (c *fakeCall) send(ctx context.Context, t *testing.T) {
	enc, err := opus.NewEncoder(48000, 1, opus.AppVoIP)
	if err != nil {
		t.Error(err)
		return
	}
	rate, pt, silence := 48000, uint8(111), []byte{0xf8, 0xff, 0xfe} // CELT fullband 20 ms, digital silence
	if c.pcmu {
		rate, pt, silence = 8000, 0, []byte(strings.Repeat("\xff", 160))
	}
	pcm := make([]int16, rate/50)
	out := make([]byte, 1500)
	start := time.Now()
	var seq uint16
	var ts uint32
	tone, phase := 0, 0.0
	for k := 1; ; {
		select {
		case <-ctx.Done():
			return
		case f := <-c.speak:
			if tone == 0 {
				tone = -f // negative: the next frame starts a talkspurt
			} else {
				tone += f
			}
		case <-time.After(time.Until(start.Add(time.Duration(k) * frameDuration))):
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 42}, Payload: silence}
			if tone != 0 {
				p.Marker = tone < 0
				tone = max(tone, -tone) - 1
				for i := range pcm {
					pcm[i] = int16(8000 * math.Sin(phase))
					phase += 2 * math.Pi * 440 / float64(rate)
				}
				n, _ := enc.Encode(pcm, out)
				if c.pcmu {
					n = len(pcm)
					for i, v := range pcm {
						out[i] = g711.EncodeUlawFrame(v)
					}
				}
				p.Payload = out[:n]
			}
			_ = c.track.WriteRTP(p)
			seq, ts, k = seq+1, ts+uint32(len(pcm)), k+1
		}
	}
}

func (f *fakeBridge) ws(w http.ResponseWriter, r *http.Request) {
	c := f.get(r.PathValue("id"))
	if c == nil {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	if r.URL.Query().Get("listen") == "pcm_16000" {
		c.wsMu.Lock()
		c.ws = conn
		c.wsMu.Unlock()
		defer func() {
			c.wsMu.Lock()
			c.ws = nil
			c.wsMu.Unlock()
		}()
	}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var m struct{ Type string }
		_ = json.Unmarshal(msg, &m)
		switch m.Type {
		case "text":
			c.speak <- 25
			c.wsMu.Lock()
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"speaking"}`))
			c.wsMu.Unlock()
		}
	}
}

// TestReceiversAgainstAFakeBridge: two calls, driven over HTTP and the bot
// WebSocket; Opus one-way, then PCMU and Opus
// two-way (caller audio out, bots listening).
func TestReceiversAgainstAFakeBridge(t *testing.T) {
	for _, tc := range []struct {
		codec  media.Codec
		twoWay bool
	}{{media.CodecOpus, false}, {media.CodecPCMU, true}, {media.CodecOpus, true}} {
		t.Run(fmt.Sprintf("%v two-way %v", tc.codec, tc.twoWay), func(t *testing.T) { testReceivers(t, tc.codec, tc.twoWay) })
	}
}

func testReceivers(t *testing.T, codec media.Codec, twoWay bool) {
	f := newFakeBridge(t)
	defer f.close()
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rx, err := newRxSocket(codec, twoWay)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.close()
	win := &window{}
	a, err := dialCall(ctx, hc, rx, f.srv.URL, 0, win)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := dialCall(ctx, hc, rx, f.srv.URL, 1, win)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if !strings.HasPrefix(a.Location, "/v1/calls/") || !strings.HasPrefix(b.Location, "/v1/calls/") {
		t.Errorf("locations: %q %q", a.Location, b.Location)
	}
	cfg := &driveConfig{Duty: 0.5, Listen: twoWay}
	res := &driveResult{}
	httpBot := &bot{cfg: cfg, hc: hc, base: f.srv.URL, call: a, mode: driveHTTP, res: res, win: win}
	wsBot := &bot{cfg: cfg, hc: hc, base: f.srv.URL, call: b, mode: driveWS, res: res, win: win}
	for _, b := range []*bot{httpBot, wsBot} {
		if err := b.open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if (httpBot.ws != nil) != twoWay {
		t.Errorf("HTTP bot WebSocket open: %v, two-way %v", httpBot.ws != nil, twoWay)
	}
	time.Sleep(300 * time.Millisecond) // idle: silence teaches the size
	win.start.Store(time.Now().UnixNano())
	sent := time.Now().UnixNano()
	for _, b := range []*bot{httpBot, wsBot} {
		if err := b.text(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1600 * time.Millisecond) // 25 frames of tone and some silence
	win.end.Store(time.Now().UnixNano())
	httpBot.close()
	wsBot.close()
	// Two-way, both bots hear up to 50 caller frames a second of the window
	// (fewer if the sender's ticker drops ticks on a loaded machine).
	want := 2 * uint64(time.Duration(win.end.Load()-win.start.Load())/frameDuration)
	if heard := res.heard.Load(); twoWay && (heard < want/2 || heard > want+4) || !twoWay && heard != 0 {
		t.Errorf("caller frames heard by the bots: %d of %d (two-way %v)", heard, want, twoWay)
	}
	rx.freeze()
	a.hangup(hc, f.srv.URL)
	b.hangup(hc, f.srv.URL)
	a.close()
	b.close()
	if rx.conn.drops.Load() != 0 {
		t.Errorf("receiver socket drops %d", rx.conn.drops.Load())
	}
	for _, c := range []*callClient{a, b} {
		s := c.Stats
		// ~1.6 s at 50 packets/s; loose bounds: the race detector is slow.
		// (Late frames are the sender's timing: not asserted.)
		if s.Packets < 40 || s.Pacing.Count == 0 || s.Gaps != 0 || s.Skips != 0 {
			t.Errorf("call %d: packets %d pacing samples %d gaps %d skips %d", c.Index, s.Packets, s.Pacing.Count, s.Gaps, s.Skips)
		}
		// G.711 silence is as large as speech: only markers tell speech.
		if want := map[bool]uint64{false: 25, true: 1}[codec.IsG711()]; s.Speech < want || s.Speech > want+1 {
			t.Errorf("call %d: speech %d", c.Index, s.Speech)
		}
		if start := s.speechStart.Load(); start <= sent || start > sent+int64(5*time.Second) {
			t.Errorf("call %d: speech started %v after the text", c.Index, time.Duration(start-sent))
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	sdp := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
		"a=candidate:1 1 udp 2130706431 192.0.2.2 40000 typ host\r\n" +
		"a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n" +
		"a=candidate:3 1 udp 2130706431 abcd.local 40002 typ host\r\n" +
		"a=candidate:4 1 udp 2130706431 ::1 40003 typ host\r\n" +
		"a=candidate:5 1 udp 1694498815 203.0.113.9 40004 typ srflx raddr 127.0.0.1 rport 40001\r\n" +
		"a=end-of-candidates\r\n"
	got, addrs, err := loopbackOnly(sdp)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 2 || addrs[0] != netip.MustParseAddrPort("127.0.0.1:40001") || addrs[1] != netip.MustParseAddrPort("[::1]:40003") {
		t.Errorf("addresses %v", addrs)
	}
	want := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
		"a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n" +
		"a=candidate:4 1 udp 2130706431 ::1 40003 typ host\r\n" +
		"a=end-of-candidates\r\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, _, err := loopbackOnly("v=0\r\na=candidate:1 1 udp 1 192.0.2.2 1 typ host\r\n"); err == nil {
		t.Error("no loopback candidate accepted")
	}
}
