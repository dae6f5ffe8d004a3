package bridge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge/cluster/redistest"
)

// newFleetBridge starts a bridge that joins the fleet at redisURL, with its
// node URL known before it listens. Fast heartbeats keep the test short.
func newFleetBridge(t *testing.T, cfg Config, redisURL string, log ...*lockedBuffer) *testBridge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClusterRedis, cfg.NodeURL = redisURL, "http://"+ln.Addr().String()
	lg := testLog()
	if len(log) > 0 {
		lg = slog.New(slog.NewTextHandler(log[0], &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := newServer(context.Background(), cfg, lg, seams{loopbackOnly: true, heartbeat: 100 * time.Millisecond, nodeTTL: time.Second})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	closeOnCleanup(t, srv, hs)
	return &testBridge{srv: srv, hs: hs, url: hs.URL, tok: cfg.APIToken}
}

// noRedirect sends one request without following redirects.
func noRedirect(t *testing.T, method, url, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// waitRoom waits until the registry shows b with room n.
func waitRoom(t *testing.T, from, b *testBridge, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		nodes, err := from.srv.cluster.reg.Nodes(context.Background())
		for _, nd := range nodes {
			if err == nil && nd.URL == b.url && nd.Room == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry: %+v %v; want %s with room %d", nodes, err, b.url, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterPlacement: a full node sends POST /v1/calls to the node with
// room (307, path and query kept); with no such node it refuses as one node
// does (503 max_calls). A created call's Location is absolute.
func TestClusterPlacement(t *testing.T) {
	rs := redistest.Start(t)
	a := newFleetBridge(t, Config{MaxCalls: 1}, rs.URL())
	off := newOfferer(t, 64, nil)
	offer := []byte(off.offer(t))

	resp, body := a.do(t, "POST", "/v1/calls", "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(resp.Header.Get("Location"), a.url+"/v1/calls/") {
		t.Fatalf("create: %d %q %s (want 201 with an absolute Location)", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	// Full and alone: the single-node answer.
	resp, body = a.do(t, "POST", "/v1/calls?voice_id=v1", "application/sdp", offer)
	wantError(t, resp, body, http.StatusServiceUnavailable, "max_calls")

	b := newFleetBridge(t, Config{MaxCalls: 3}, rs.URL())
	waitRoom(t, a, b, 3)
	resp = noRedirect(t, "POST", a.url+"/v1/calls?voice_id=v1", "application/sdp", offer)
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != b.url+"/v1/calls?voice_id=v1" {
		t.Fatalf("full node: %d Location %q (want 307 to %s/v1/calls?voice_id=v1)", resp.StatusCode, resp.Header.Get("Location"), b.url)
	}
	// Go's client follows the 307 with method and body, as WHIP/WHEP clients do.
	resp, body = a.do(t, "POST", "/v1/calls?voice_id=v1", "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(resp.Header.Get("Location"), b.url+"/v1/calls/") {
		t.Fatalf("followed 307: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), b.url+"/v1/calls/")
	if info := a.getInfo(t, id); info.VoiceID != "v1" || info.ID != id {
		t.Errorf("the redirected call, read through a: %+v", info)
	}
}

// TestClusterUnreachableAndDrain: a call whose node is registered but does
// not answer is 502 node_unreachable; Drain turns /healthz to 503 at once
// and waits for calls to end.
func TestClusterUnreachableAndDrain(t *testing.T) {
	rs := redistest.Start(t)
	a := newFleetBridge(t, Config{AllowedOrigins: []string{"https://app.example.com"}}, rs.URL())
	b := newFleetBridge(t, Config{AllowedOrigins: []string{"https://app.example.com"}}, rs.URL())
	off := newOfferer(t, 64, nil)
	offer := []byte(off.offer(t))
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), b.url+"/v1/calls/")
	if info := a.getInfo(t, id); info.State != stateNew {
		t.Fatalf("forwarded GET: %+v", info)
	}
	// A browser's request forwarded: one set of CORS headers, the owner's.
	resp, _ = a.do(t, "GET", "/v1/calls/"+id, "", nil, "Origin", "https://app.example.com")
	if v := resp.Header.Values("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || len(v) != 1 || v[0] != "https://app.example.com" {
		t.Errorf("forwarded CORS: %d %q", resp.StatusCode, v)
	}
	b.hs.Close() // b's HTTP is gone, its heartbeat is not
	resp, body = a.do(t, "GET", "/v1/calls/"+id, "", nil)
	wantError(t, resp, body, http.StatusBadGateway, "node_unreachable")

	resp, _ = a.do(t, "GET", "/healthz", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz before drain: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := b.srv.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a call running: %v (want the deadline)", err)
	}
	if err := a.srv.Drain(context.Background()); err != nil {
		t.Errorf("Drain of a node without calls: %v", err)
	}
	resp, body = a.do(t, "GET", "/healthz", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "draining\n" {
		t.Errorf("healthz while draining: %d %q", resp.StatusCode, body)
	}
	resp, body = a.do(t, "POST", "/v1/calls", "application/sdp", offer)
	wantError(t, resp, body, http.StatusServiceUnavailable, "shutting_down")
}

// TestClusterRedisPasswordNeverLogged: the registry's URL is logged without
// its password.
func TestClusterRedisPasswordNeverLogged(t *testing.T) {
	var buf lockedBuffer
	// Nothing listens there: the heartbeats fail and are logged.
	newFleetBridge(t, Config{}, "redis://:s3cretpw@127.0.0.1:"+strconv.Itoa(redistest.FreePort(t))+"/0", &buf)
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(buf.String(), "cluster registry unreachable") {
		if time.Now().After(deadline) {
			t.Fatalf("no refused heartbeat logged:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(buf.String(), "s3cretpw") {
		t.Fatalf("the Redis password is in the log:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "cluster registry") {
		t.Fatalf("no cluster log line:\n%s", buf.String())
	}
}

// TestClusterBotWebSocketForwarded: a bot WebSocket opened at a node that
// does not hold the call reaches the call, and the entry node's Shutdown
// closes the tunnel (the proxy hijacked it, so nothing else would).
func TestClusterBotWebSocketForwarded(t *testing.T) {
	rs := redistest.Start(t)
	a := newFleetBridge(t, Config{APIToken: "tok"}, rs.URL())
	b := newFleetBridge(t, Config{APIToken: "tok"}, rs.URL())
	off := newOfferer(t, 64, nil)
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), b.url+"/v1/calls/")
	bt := a.dialBot(t, id) // through a, with the token in the header
	deadline := time.Now().Add(waitTimeout)
	for b.getInfo(t, id).BotSockets != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the bot socket opened at a never reached the call on b")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bt.done:
	case <-time.After(waitTimeout):
		t.Fatal("a's Shutdown left the forwarded WebSocket open")
	}
	for b.getInfo(t, id).BotSockets != 0 {
		if time.Now().After(deadline) {
			t.Fatal("b still counts the bot socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info := b.getInfo(t, id); info.State == stateClosed {
		t.Errorf("the call ended with the entry node: %+v", info)
	}
}
