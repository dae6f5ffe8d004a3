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
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
)

// rxSocket is the timestamping loopback socket all receiving calls of a run
// share, with the ICE UDP mux that hands it to their Pion stacks. The bridge
// gives each call its own port: the sender's address tells the call.
type rxSocket struct {
	conn   *tapConn
	mux    *ice.UDPMuxDefault
	api    *webrtc.API
	codec  media.Codec  // what the receivers offer
	caller *callerAudio // two-way runs only
	hdr    rtp.Header   // the reading goroutine's

	mu    sync.RWMutex
	calls map[netip.AddrPort]*callClient // by the bridge's candidate address; guarded by mu
}

func newRxSocket(codec media.Codec, twoWay bool) (r *rxSocket, err error) {
	r = &rxSocket{calls: map[netip.AddrPort]*callClient{}, codec: codec}
	if r.conn, err = listenTap(r.tap, rxBatchSleep); err != nil {
		return nil, err
	}
	r.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: r.conn, Logger: quietLogger.NewLogger("")})
	var se webrtc.SettingEngine
	se.SetICEUDPMux(r.mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.LoggerFactory = quietLogger
	var me webrtc.MediaEngine
	err = me.RegisterCodec(codecParams(codec), webrtc.RTPCodecTypeAudio)
	// An empty registry, not nil (Pion's defaults): receivers send no NACKs,
	// reports or TWCC feedback, and run no per-call report loops.
	r.api = webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	if err == nil && twoWay {
		r.caller, err = startCallerAudio(codec)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// codecParams is the one codec a receiver offers.
func codecParams(c media.Codec) webrtc.RTPCodecParameters {
	if c.IsG711() {
		return webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(c.PayloadType()),
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/" + strings.ToUpper(c.String()), ClockRate: 8000, Channels: 1}}
	}
	return webrtc.RTPCodecParameters{PayloadType: 111,
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}
}

// tap accounts one RTP packet, on the mux's reading goroutine; it says
// whether Pion should get it. Read-locked while the stats change, so that
// freeze stops all accounting.
func (r *rxSocket) tap(t int64, from netip.AddrPort, b []byte) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.calls[from]
	if c == nil {
		return true // Pion drops what it does not know
	}
	if h, err := parseRTPHeader(&r.hdr, b); err == nil {
		c.Stats.OnPacket(t, h)
	}
	return false // its SRTP is never decrypted
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

// freeze forgets every call: then no stats change any more and they may be
// read from any goroutine.
func (r *rxSocket) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.calls)
}

// close stops the caller audio and closes the socket, after the calls.
func (r *rxSocket) close() {
	if r.caller != nil {
		r.caller.stop()
	}
	_ = r.mux.Close()
}

// callClient is one receiving call: a Pion PeerConnection on the shared
// socket, which never sees the call's RTP.
type callClient struct {
	Index    int
	Location string // the call's URL path
	Stats    *callStats

	rx      *rxSocket
	remotes []netip.AddrPort // the bridge's loopback candidates
	pc      *webrtc.PeerConnection
}

// quietLogger silences Pion: thousands of peers would drown the report.
var quietLogger = &logging.DefaultLoggerFactory{DefaultLogLevel: logging.LogLevelDisabled, Writer: io.Discard}

// dialCall opens one call on the bridge at base (http://127.0.0.1:port)
// with an application/sdp offer, and waits until it is connected.
func dialCall(ctx context.Context, hc *http.Client, rx *rxSocket, base string, idx int, win *window) (_ *callClient, err error) {
	c := &callClient{Index: idx, Stats: newCallStats(win, rx.codec.ClockRate()), rx: rx}
	defer func() {
		if err != nil {
			c.hangup(hc, base)
			c.close()
		}
	}()
	if c.pc, err = rx.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, err
	}
	states := make(chan webrtc.PeerConnectionState, 8)
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case states <- s:
		default:
		}
	})
	var track *webrtc.TrackLocalStaticRTP
	if rx.caller == nil {
		_, err = c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	} else if track, err = webrtc.NewTrackLocalStaticRTP(codecParams(rx.codec).RTPCodecCapability, "caller", "load"); err == nil {
		_, err = c.pc.AddTrack(track) // sendrecv
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
		return nil, fmt.Errorf("load: POST /v1/calls: Location %q", c.Location)
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
	for {
		select {
		case s := <-states:
			if s == webrtc.PeerConnectionStateConnected {
				if track != nil {
					rx.caller.add(track)
				}
				return c, nil
			} else if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
				return nil, errors.New("load: peer connection failed")
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
		return "", nil, errors.New("load: the answer has no loopback ICE candidate")
	}
	return out.String(), kept, nil
}

// hangup sends DELETE for the call, ignoring errors (the bridge may be gone).
func (c *callClient) hangup(hc *http.Client, base string) {
	if c.Location != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, _ = request(ctx, hc, http.MethodDelete, base+c.Location, "", nil, http.StatusNoContent)
	}
}

// close tears down the peer connection and forgets the call's addresses.
func (c *callClient) close() {
	if c.pc != nil {
		_ = c.pc.Close()
	}
	c.rx.setCalls(c, false)
}
