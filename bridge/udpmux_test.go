package bridge

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

// answeredCall is a call created through POST /v1/calls whose answer the
// test reads.
type answeredCall struct {
	call
	offer, answer string
	rec           *recorder
	bot           *bot
}

// createAnsweredCall is createCall that keeps the answer, records the
// offerer's decoded frames and dials the call's bot.
func (b *testBridge) createAnsweredCall(t *testing.T) *answeredCall {
	t.Helper()
	off := newOfferer(t, 1<<14, nil)
	offer := off.offer(t)
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(offer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	off.accept(t, string(body))
	waitFor(t, off.connected, "the offerer to connect")
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	b.waitState(t, id, stateConnected)
	c := &answeredCall{call: call{id: id, off: off}, offer: offer, answer: string(body), rec: newRecorder(t, off)}
	c.bot = b.dialBot(t, id)
	return c
}

// speaks sends a sentence to the call, waits until its offerer has decoded
// want speech frames received after the text was sent, and for the bot's
// "done".
func (c *answeredCall) speaks(t *testing.T, want int) {
	t.Helper()
	from := c.rec.len()
	c.bot.send(t, map[string]any{"type": "text", "text": "مرحبا بك في فصيح", "flush": true})
	c.bot.expect(t, "speaking")
	for {
		if _, _, n := speechSpan(c.rec.snapshot()[from:]); n >= want {
			break
		}
		c.rec.waitFrames(t, c.rec.len()+1)
	}
	c.bot.expect(t, "done")
}

// hostPorts returns the ports of the host candidates of an SDP.
func hostPorts(t *testing.T, sdp string) []int {
	t.Helper()
	var ports []int
	for _, l := range strings.Split(sdp, "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "a=candidate:"))
		if !strings.HasPrefix(l, "a=candidate:") || len(f) < 8 || f[6] != "typ" || f[7] != "host" {
			continue
		}
		p, err := strconv.Atoi(f[5])
		if err != nil {
			t.Fatalf("candidate %q: %v", l, err)
		}
		ports = append(ports, p)
	}
	return ports
}

// sdpAttr returns the value of the first a=key: line of an SDP.
func sdpAttr(sdp, key string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a="+key+":"); ok {
			return v
		}
	}
	return ""
}

// stunAnswered sends an ICE connectivity check of the call (the answer's
// ufrag and password, the offer's ufrag) to 127.0.0.1:port from a fresh
// socket, as a new candidate of the caller would, and reports whether a
// Binding success response came back within wait.
func stunAnswered(t *testing.T, port int, c *answeredCall, wait time.Duration) bool {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(sdpAttr(c.answer, "ice-ufrag")+":"+sdpAttr(c.offer, "ice-ufrag")),
		ice.AttrControlling(1), ice.PriorityAttr(1),
		stun.NewShortTermIntegrity(sdpAttr(c.answer, "ice-pwd")), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDP(req.Raw, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(wait)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			return false // the deadline: no answer
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.Type == stun.BindingSuccess && res.TransactionID == req.TransactionID {
			return true
		}
	}
}

// TestSharedUDPPort: every WebRTC call of a bridge answers with the same
// host candidate port and plays on it; a call ending leaves the port to the
// others (its ufrag no longer answered), a later call works, and Shutdown
// frees the port.
func TestSharedUDPPort(t *testing.T) {
	b := newBridge(t, Config{})
	port := b.srv.UDPPort()
	if port == 0 {
		t.Fatal("no shared UDP port by default")
	}
	c1, c2 := b.createAnsweredCall(t), b.createAnsweredCall(t)
	for i, c := range []*answeredCall{c1, c2} {
		ports := hostPorts(t, c.answer)
		if len(ports) == 0 {
			t.Fatalf("call %d: no host candidate:\n%s", i+1, c.answer)
		}
		for _, p := range ports {
			if p != port {
				t.Errorf("call %d: host candidate port %d, want the shared %d", i+1, p, port)
			}
		}
	}
	c1.speaks(t, 10)
	c2.speaks(t, 10)

	// The probe first shows it is answered while the call runs, so its
	// silence afterwards means the ufrag left the mux.
	if !stunAnswered(t, port, c1, waitTimeout) {
		t.Fatal("a running call does not answer connectivity checks on the shared port")
	}
	resp, body := b.do(t, "DELETE", "/v1/calls/"+c1.id, "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	b.waitState(t, c1.id, stateClosed)
	if stunAnswered(t, port, c1, time.Second) {
		t.Error("an ended call still answers connectivity checks on the shared port")
	}
	c2.speaks(t, 10) // undisturbed
	if b.getInfo(t, c2.id).State != stateConnected {
		t.Errorf("call 2 is %s after call 1 ended", b.getInfo(t, c2.id).State)
	}
	c3 := b.createAnsweredCall(t)
	if ports := hostPorts(t, c3.answer); len(ports) == 0 || ports[0] != port {
		t.Errorf("call 3: host candidate ports %v, want %d", ports, port)
	}
	c3.speaks(t, 10)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	free, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("the shared port is still taken after Shutdown: %v", err)
	}
	free.Close()
}

// TestSharedUDPPortFixedAndPublicIP: -udp-port is the port of every host
// candidate, -public-ip rewrites their address, and a port taken by another
// socket is a clear start-up error.
func TestSharedUDPPortFixedAndPublicIP(t *testing.T) {
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port
	_, err = newServer(context.Background(), Config{UDPPort: port}, testLog(), seams{loopbackOnly: true})
	if err == nil || !strings.Contains(err.Error(), "udp-port "+strconv.Itoa(port)) {
		t.Fatalf("a taken -udp-port: error %v, want one naming it", err)
	}
	taken.Close()

	b := newBridge(t, Config{UDPPort: port, PublicIPs: []string{"203.0.113.7"}})
	if b.srv.UDPPort() != port {
		t.Fatalf("UDPPort %d, want %d", b.srv.UDPPort(), port)
	}
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
		if f := strings.Fields(l); len(f) < 6 || f[4] != "203.0.113.7" || f[5] != strconv.Itoa(port) {
			t.Errorf("candidate %q, want 203.0.113.7 port %d", l, port)
		}
	}
	if n == 0 {
		t.Fatalf("no candidates:\n%s", body)
	}
}

// TestOfferWithMDNSCandidate: the bridge resolves no .local candidates (no
// mDNS), but an offer carrying one (as a browser hiding its addresses does)
// is answered, and the call connects through the offerer's other candidates.
func TestOfferWithMDNSCandidate(t *testing.T) {
	b := newBridge(t, Config{})
	off := newOfferer(t, 16, nil)
	offer := off.offer(t)
	i := strings.Index(offer, "a=candidate:")
	if i < 0 {
		t.Fatalf("the offerer gathered no candidate:\n%s", offer)
	}
	offer = offer[:i] + "a=candidate:1 1 udp 2122260223 2b1e1a4c-7d1c-4c0e-9d62-5b0f3f0e8a11.local 54321 typ host\r\n" + offer[i:]
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(offer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	off.accept(t, string(body))
	waitFor(t, off.connected, "the offerer to connect")
	b.waitState(t, strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/"), stateConnected)
}
