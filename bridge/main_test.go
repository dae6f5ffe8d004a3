package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/peertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout is how long a test waits for an event before failing: generous,
// the tests never assert on time.
const waitTimeout = 20 * time.Second

// testLog logs to stderr when VOICEBRIDGE_TEST_LOG is set (debug level), else
// nowhere.
func testLog() *slog.Logger {
	if os.Getenv("VOICEBRIDGE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testBridge is a Server behind httptest on 127.0.0.1.
type testBridge struct {
	srv *Server
	hs  *httptest.Server
	url string
	tok string
}

// newBridge starts a bridge whose ICE gathers on loopback only. It is shut
// down at the end of the test.
func newBridge(t *testing.T, cfg Config, sm ...seams) *testBridge {
	t.Helper()
	s := seams{loopbackOnly: true}
	if len(sm) > 0 {
		s = sm[0]
		s.loopbackOnly = true
	}
	srv, err := newServer(context.Background(), cfg, testLog(), s)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	closeOnCleanup(t, srv, hs)
	return &testBridge{srv: srv, hs: hs, url: hs.URL, tok: cfg.APIToken}
}

// do sends a request with the bridge's token (if any) and returns the
// response with its body read.
func (b *testBridge) do(t *testing.T, method, path, contentType string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if b.tok != "" {
		req.Header.Set("Authorization", "Bearer "+b.tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// jsonBody marshals v.
func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantError checks a response is the contract's JSON error with status and
// code.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q and a message", e.Error, code)
	}
}

// closeOnCleanup shuts srv down (within waitTimeout) and closes hs when
// the test ends.
func closeOnCleanup(t *testing.T, srv *Server, hs *httptest.Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
}

// offerer is a real Pion peer in the test: it offers to receive audio, like a
// browser or a WHEP player, and records the RTP it gets.
type offerer struct {
	pc        *webrtc.PeerConnection
	packets   chan *rtp.Packet
	connected chan struct{}
	closed    chan struct{}
	wg        sync.WaitGroup // the track reader (Pion's OnTrack goroutine)
	stateOnce [2]sync.Once

	mu       sync.Mutex
	stopping bool // guarded by mu: close started; no new track reader
}

// newOfferer builds an offerer that gathers on loopback only. packetCap
// bounds the RTP packets buffered for the test (the reader blocks beyond).
func newOfferer(t *testing.T, packetCap int, udpMux ice.UDPMux) *offerer {
	t.Helper()
	pc := peertest.MustPeer(t, nil, udpMux)
	o := &offerer{pc: pc, packets: make(chan *rtp.Packet, packetCap), connected: make(chan struct{}), closed: make(chan struct{})}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			o.stateOnce[0].Do(func() { close(o.connected) })
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed:
			o.stateOnce[1].Do(func() { close(o.closed) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		// Add under mu, so it never races with close's Wait.
		o.mu.Lock()
		if o.stopping {
			o.mu.Unlock()
			return
		}
		o.wg.Add(1)
		o.mu.Unlock()
		defer o.wg.Done()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case o.packets <- p:
			case <-o.closed:
				return
			}
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.close)
	return o
}

// offer returns the offerer's SDP offer with ICE gathering complete.
func (o *offerer) offer(t *testing.T) string {
	t.Helper()
	return peertest.Offer(t, o.pc)
}

// accept applies the bridge's answer.
func (o *offerer) accept(t *testing.T, answer string) {
	t.Helper()
	if err := o.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
}

// close ends the offerer and waits for its track reader.
func (o *offerer) close() {
	o.mu.Lock()
	o.stopping = true
	o.mu.Unlock()
	_ = o.pc.GracefulClose()
	o.stateOnce[1].Do(func() { close(o.closed) })
	o.wg.Wait()
}

// waitClosed waits for ch or fails the test.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// call is a call created by a test through the API.
type call struct {
	id  string
	off *offerer
}

// createCall starts a call through POST /v1/calls in the SDP form with query,
// connects the offerer and returns it.
func (b *testBridge) createCall(t *testing.T, query string) *call {
	t.Helper()
	off := newOfferer(t, 1<<14, nil)
	resp, body := b.do(t, "POST", "/v1/calls"+query, "application/sdp", []byte(off.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v1/calls/") {
		t.Fatalf("Location %q", loc)
	}
	off.accept(t, string(body))
	waitFor(t, off.connected, "the offerer to connect")
	id := strings.TrimPrefix(loc, "/v1/calls/")
	// The bridge's side may finish DTLS a moment after the offerer's; a call
	// torn down before that cannot send the peer a DTLS close.
	b.waitState(t, id, stateConnected)
	return &call{id: id, off: off}
}
