package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
)

// rxSocket is the timestamping loopback socket every receiving call of a
// run shares, with the ICE UDP mux that hands it to the calls' Pion stacks.
// The bridge gives each call its own port, so the sender's address tells
// the call.
type rxSocket struct {
	conn   *tapConn
	mux    *ice.UDPMuxDefault
	api    *webrtc.API // every call's: Pion copies its media engine per peer
	codec  media.Codec // what the receivers offer
	caller *callerAudio
	hdr    rtp.Header // the reading goroutine's

	mu      sync.RWMutex
	calls   map[netip.AddrPort]*callClient // by the bridge's candidate address; guarded by mu
	unknown atomic.Uint64                  // RTP from no registered address
}

// newRxSocket opens the socket; with twoWay, every call also sends caller
// audio.
func newRxSocket(codec media.Codec, twoWay bool) (*rxSocket, error) {
	r := &rxSocket{calls: map[netip.AddrPort]*callClient{}, codec: codec}
	conn, err := listenTap(r.tap, rxBatchSleep)
	if err != nil {
		return nil, err
	}
	r.conn = conn
	r.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: quietLogger{}.NewLogger("")})
	var se webrtc.SettingEngine
	se.SetICEUDPMux(r.mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.LoggerFactory = quietLogger{}
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(codecParams(codec), webrtc.RTPCodecTypeAudio); err != nil {
		r.close()
		return nil, err
	}
	// An empty registry, not nil (Pion's defaults): receivers send no NACKs,
	// reports or TWCC feedback, and run no per-call report loops.
	r.api = webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	if twoWay {
		if r.caller, err = startCallerAudio(codec); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

// codecParams is the one codec a receiver offers.
func codecParams(c media.Codec) webrtc.RTPCodecParameters {
	switch c {
	case media.CodecPCMU:
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0}
	case media.CodecPCMA:
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, PayloadType: 8}
	}
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}
}

// tap accounts one RTP packet; it runs on the mux's reading goroutine.
func (r *rxSocket) tap(t int64, from netip.AddrPort, b []byte) bool {
	// Read-locked while the call's stats change, so that freeze stops all
	// accounting before the stats are read.
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.calls[from]
	if c == nil {
		r.unknown.Add(1)
		return true // Pion drops what it does not know
	}
	h, err := parseRTPHeader(&r.hdr, b)
	if err != nil {
		c.Stats.Unparsed++
		return false
	}
	c.Stats.OnPacket(t, h)
	return c.Audio != nil
}

// setCalls registers c's addresses (add) or forgets them.
func (r *rxSocket) setCalls(c *callClient, add bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range c.remotes {
		if add {
			r.calls[a] = c
		} else if r.calls[a] == c {
			delete(r.calls, a)
		}
	}
}

// freeze forgets every call: once it returns, no call's stats change any
// more and they may be read from any goroutine.
func (r *rxSocket) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.calls)
}

// close stops the caller audio, then closes the mux and the socket. Calls
// are closed first.
func (r *rxSocket) close() error {
	if r.caller != nil {
		r.caller.stop()
	}
	return r.mux.Close()
}

// callClient is one receiving call: a Pion PeerConnection on the shared
// socket. Counting calls never let Pion decrypt RTP; decoding calls
// (sampled) do, and check the audio.
type callClient struct {
	Index    int
	Location string // the call's URL path, from the Location header
	Stats    *callStats
	Audio    *audioCheck // nil unless sampled

	rx      *rxSocket
	remotes []netip.AddrPort // the bridge's loopback candidates
	pc      *webrtc.PeerConnection
	wg      sync.WaitGroup // the decode goroutine
	mu      sync.Mutex
	closed  bool // guarded by mu: no decode goroutine starts after close
}

var (
	errNoLoopbackCandidate = errors.New("load: the answer has no loopback ICE candidate")
	errSignal              = errors.New("load: POST /v1/calls failed")
)

// quietLogger silences Pion: thousands of peers would drown the report.
type quietLogger struct{}

func (quietLogger) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, io.Discard)
}

// dialCall opens one call against the bridge at base (http://127.0.0.1:port)
// with a WHEP-shaped application/sdp offer, and waits until it is connected.
func dialCall(ctx context.Context, hc *http.Client, rx *rxSocket, base string, idx int, sampled bool, win *window) (_ *callClient, err error) {
	c := &callClient{Index: idx, Stats: newCallStats(win, rx.codec.ClockRate()), rx: rx}
	defer func() {
		if err != nil {
			c.hangup(hc, base)
			c.close()
		}
	}()
	if sampled {
		c.Audio = &audioCheck{codec: rx.codec}
	}
	if c.pc, err = rx.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, err
	}
	connected, failed := make(chan struct{}), make(chan struct{})
	var once, failOnce sync.Once
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(failed) })
		}
	})
	if sampled {
		c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.closed {
				c.wg.Go(func() { c.Audio.run(tr) })
			}
		})
	}
	var track *webrtc.TrackLocalStaticRTP
	if rx.caller != nil {
		track, err = webrtc.NewTrackLocalStaticRTP(codecParams(rx.codec).RTPCodecCapability, "caller", "load")
		if err == nil {
			_, err = c.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		}
	} else {
		_, err = c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	if err != nil {
		return nil, err
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b, h, err := request(ctx, hc, http.MethodPost, base+"/v1/calls", "application/sdp", []byte(c.pc.LocalDescription().SDP), http.StatusCreated)
	if err != nil {
		return nil, err
	}
	if c.Location = h.Get("Location"); !strings.HasPrefix(c.Location, "/v1/calls/") {
		return nil, fmt.Errorf("%w: Location %q", errSignal, c.Location)
	}
	answer, remotes, err := loopbackOnly(string(b))
	if err != nil {
		return nil, err
	}
	c.remotes = remotes
	rx.setCalls(c, true)
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, err
	}
	select {
	case <-connected:
	case <-failed:
		return nil, errors.New("load: peer connection failed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if track != nil {
		rx.caller.add(track)
	}
	return c, nil
}

// request sends one HTTP request and returns the response's body (up to
// 1 MiB) and header; a status other than want is an error.
func request(ctx context.Context, hc *http.Client, method, url, contentType string, body []byte, want int) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("load: %s %s: %s: %s", method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, resp.Header, err
}

// loopbackOnly drops every ICE candidate of sdp whose address is not a
// loopback IP, so that no check is ever sent elsewhere, and fails if none
// is left. It returns the addresses kept.
func loopbackOnly(sdp string) (string, []netip.AddrPort, error) {
	var out strings.Builder
	var kept []netip.AddrPort
	for _, l := range strings.SplitAfter(sdp, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), "a=candidate:"); ok {
			f := strings.Fields(c) // foundation component transport priority address port typ ...
			if len(f) < 6 {
				continue
			}
			a, err1 := netip.ParseAddr(f[4])
			port, err2 := strconv.ParseUint(f[5], 10, 16)
			if err1 != nil || err2 != nil || !a.Unmap().IsLoopback() {
				continue
			}
			kept = append(kept, netip.AddrPortFrom(a.Unmap(), uint16(port)))
		}
		out.WriteString(l)
	}
	if len(kept) == 0 {
		return "", nil, errNoLoopbackCandidate
	}
	return out.String(), kept, nil
}

// hangup sends DELETE for the call; errors are ignored (the bridge may be
// gone already).
func (c *callClient) hangup(hc *http.Client, base string) {
	if c.Location != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, _ = request(ctx, hc, http.MethodDelete, base+c.Location, "", nil, http.StatusNoContent)
	}
}

// close tears down the peer connection, forgets the call's addresses and
// waits for the decode goroutine.
func (c *callClient) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.pc != nil {
		_ = c.pc.Close()
	}
	c.rx.setCalls(c, false)
	c.wg.Wait()
}
