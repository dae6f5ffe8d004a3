package bridge

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// getInfo returns GET /v1/calls/{id}.
func (b *testBridge) getInfo(t *testing.T, id string) callInfo {
	t.Helper()
	resp, body := b.do(t, "GET", "/v1/calls/"+id, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get: %d %s", resp.StatusCode, body)
	}
	var info callInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// waitState polls GET until the call reaches state. The state changes on an
// event the test cannot observe otherwise; the poll interval is not asserted.
func (b *testBridge) waitState(t *testing.T, id, state string) callInfo {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		info := b.getInfo(t, id)
		if info.State == state {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s: state %q, want %q", id, info.State, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCreateSDPFormAndDelete(t *testing.T) {
	b := newBridge(t, Config{})
	off := newOfferer(t, 1<<14, nil)
	resp, body := b.do(t, "POST", "/v1/calls?voice_id=ar-test&stability=0.4&speed=1.1", "application/sdp", []byte(off.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type %q", ct)
	}
	answer := string(body)
	// ICE gathering complete: the candidates are in the answer itself.
	if !strings.Contains(answer, "a=candidate:") || !strings.Contains(answer, "a=end-of-candidates") {
		t.Errorf("answer without complete candidates:\n%s", answer)
	}
	if !strings.Contains(answer, "a=sendonly") || !strings.Contains(strings.ToLower(answer), "opus/48000/2") {
		t.Errorf("answer is not a sendonly Opus track:\n%s", answer)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	info := b.getInfo(t, id)
	if info.ID != id || info.State != stateNew || info.VoiceID != "ar-test" || info.CreatedAt.IsZero() {
		t.Errorf("info before connecting: %+v", info)
	}
	off.accept(t, answer)
	waitFor(t, off.connected, "the offerer to connect")
	b.waitState(t, id, stateConnected)

	resp, body = b.do(t, "DELETE", "/v1/calls/"+id, "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	// DELETE returns once the call is torn down: the peer saw the close.
	waitFor(t, off.closed, "the offerer to see the hang-up")
	info = b.getInfo(t, id)
	if info.State != stateClosed || info.CloseReason != "hangup" {
		t.Errorf("info after delete: %+v", info)
	}
	resp, body = b.do(t, "DELETE", "/v1/calls/"+id, "", nil)
	wantError(t, resp, body, http.StatusNotFound, "call_not_found")
}

func TestCreateJSONForm(t *testing.T) {
	b := newBridge(t, Config{})
	off := newOfferer(t, 1<<14, nil)
	req := map[string]any{
		"sdp": off.offer(t), "voice_id": "ar-x", "model_id": "m1", "output_format": "pcm_16000",
		"voice_settings": map[string]any{"stability": 0.5, "similarity_boost": 0.75, "speed": 1.0},
	}
	resp, body := b.do(t, "POST", "/v1/calls", "application/json; charset=utf-8", jsonBody(t, req))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var cr createResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.ID == "" || resp.Header.Get("Location") != "/v1/calls/"+cr.ID {
		t.Fatalf("id %q, Location %q", cr.ID, resp.Header.Get("Location"))
	}
	off.accept(t, cr.SDP)
	waitFor(t, off.connected, "the offerer to connect")
	info := b.waitState(t, cr.ID, stateConnected)
	if info.OutputFormat != "pcm_16000" || info.ModelID != "m1" {
		t.Errorf("info: %+v", info)
	}
	// The client vanishing (here: closing its peer connection without a
	// DELETE) ends the call.
	off.close()
	info = b.waitState(t, cr.ID, stateClosed)
	if info.CloseReason != "peer_closed" && info.CloseReason != "peer_disconnected" && info.CloseReason != "peer_failed" {
		t.Errorf("close reason %q", info.CloseReason)
	}
	waitTTSConnections(t, b, 0)
}

// cuttablePacketConn is a UDP socket the test can cut: after cut, nothing is
// sent and everything received is dropped, as when a client's network or
// process vanishes without a word.
type cuttablePacketConn struct {
	net.PacketConn
	cut atomic.Bool
}

func (c *cuttablePacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *cuttablePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

func TestVanishedClient(t *testing.T) {
	// Short ICE timeouts so that the vanished client is noticed quickly; the
	// disconnected timeout is the bridge's own.
	b := newBridge(t, Config{DisconnectedTimeout: 300 * time.Millisecond},
		seams{iceTimeouts: [3]time.Duration{time.Second, 5 * time.Second, 200 * time.Millisecond}})
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cut := &cuttablePacketConn{PacketConn: udp}
	mux := webrtc.NewICEUDPMux(nil, cut)
	defer mux.Close()
	off := newOfferer(t, 1<<14, mux)
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	off.accept(t, string(body))
	waitFor(t, off.connected, "the offerer to connect")
	b.waitState(t, id, stateConnected)

	cut.cut.Store(true)
	info := b.waitState(t, id, stateClosed)
	if info.CloseReason != "peer_disconnected" {
		t.Errorf("close reason %q, want peer_disconnected", info.CloseReason)
	}
	waitTTSConnections(t, b, 0)
}

func TestPublicIPAndPortRange(t *testing.T) {
	b := newBridge(t, Config{PublicIPs: []string{"203.0.113.7"}, UDPPortMin: 41000, UDPPortMax: 41099})
	off := newOfferer(t, 16, nil)
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	n := 0
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, "a=candidate:") {
			continue
		}
		n++
		f := strings.Fields(l)
		if len(f) < 6 || f[4] != "203.0.113.7" {
			t.Errorf("candidate without the public IP: %s", l)
			continue
		}
		if p, err := strconv.Atoi(f[5]); err != nil || p < 41000 || p > 41099 {
			t.Errorf("candidate port outside the range: %s", l)
		}
	}
	if n == 0 {
		t.Fatalf("no candidates:\n%s", body)
	}
}
