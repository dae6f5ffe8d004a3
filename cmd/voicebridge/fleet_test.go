package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/voicebridge/voicebridge/bridge/cluster/redistest"
)

// TestFleet runs a fleet of real parts: redis-server, three voicebridge
// processes and HAProxy (the committed cmd/voicebridge/fleet/haproxy.cfg)
// in front, and checks the contract's "Cluster" section from the outside:
// placement and spread, every request and the bot WebSocket through the
// balancer reaching its call, a SIGKILLed node's calls reading node_lost
// while the others keep pacing without a gap, a Redis outage and restart
// under load, and a SIGTERM drain. VOICEBRIDGE_FLEET_CALLS sets how many
// calls are spread (default 30; the README's numbers come from 300).
func TestFleet(t *testing.T) {
	lookDebian(t, "haproxy")
	rs := redistest.Start(t)
	bin := buildVoicebridge(t)
	const token = "fleet-token"
	c := newClient(t, token)
	spread := 30
	if v := os.Getenv("VOICEBRIDGE_FLEET_CALLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 {
			t.Fatalf("VOICEBRIDGE_FLEET_CALLS=%q: want a number >= 3", v)
		}
		spread = n
	}
	maxCalls := spread/3 + 10
	nodes := []*node{
		startNode(t, c.hc, bin, "node1", rs.URL(), token, maxCalls),
		startNode(t, c.hc, bin, "node2", rs.URL(), token, maxCalls),
		startNode(t, c.hc, bin, "node3", rs.URL(), token, maxCalls),
	}
	lb := startHAProxy(t, c.hc, nodes)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), DisableIdentity: true})
	t.Cleanup(func() { rdb.Close() })
	eventually(t, "three nodes in the registry", func() error {
		return wantNodeKeys(rdb, 3)
	})

	t.Run("spread and reach", func(t *testing.T) { spreadAndReach(t, c, lb, nodes, spread) })

	// Two connected calls on each node, created at the nodes themselves.
	var live []*liveCall
	for _, n := range nodes {
		live = append(live, c.connectAt(t, n.url, nodes), c.connectAt(t, n.url, nodes))
	}
	t.Run("forwarding overhead", func(t *testing.T) { forwardOverhead(t, c, live[0], nodes[1]) })

	// SIGKILL node3: its calls read node_lost from anywhere, the other
	// nodes' calls keep pacing.
	survivors, lost := live[:4], live[4:]
	before := packetsOf(survivors)
	for _, lc := range survivors {
		lc.peer.resetGap()
	}
	killed := time.Now()
	nodes[2].signal(t, syscall.SIGKILL)
	eventually(t, "node3's call to read node_lost", func() error {
		in, err := c.get(lb, lost[0].id)
		if err == nil && in.CloseReason != "node_lost" {
			err = fmt.Errorf("state %s reason %q", in.State, in.CloseReason)
		}
		return err
	})
	toLost := time.Since(killed)
	t.Logf("SIGKILL to node_lost (through the balancer): %v", toLost.Round(10*time.Millisecond))
	if toLost > 10*time.Second {
		t.Errorf("node_lost after %v; the contract says within 10 s", toLost)
	}
	for _, n := range nodes[:2] {
		if in, err := c.get(n.url, lost[1].id); err != nil || in.State != "closed" || in.CloseReason != "node_lost" {
			t.Errorf("%s: lost call: %+v %v", n.name, in, err)
		}
		resp, b := c.do(t, "POST", n.url+"/v1/calls/"+lost[1].id+"/text", "application/json", []byte(`{"text":"hi"}`))
		if resp.StatusCode != http.StatusGone || errorCode(b) != "node_lost" {
			t.Errorf("%s: text to a lost call: %d %s (want 410 node_lost)", n.name, resp.StatusCode, b)
		}
	}
	eventually(t, "node3 out of the registry", func() error { return wantNodeKeys(rdb, 2) })
	checkPacing(t, survivors, before, "while node3 died")

	t.Run("redis outage", func(t *testing.T) { redisOutage(t, c, lb, rs, nodes[:2], survivors) })
	t.Run("drain", func(t *testing.T) { drain(t, c, rdb, nodes[:2], survivors) })
}

// wantNodeKeys checks the registry holds n node records.
func wantNodeKeys(rdb *redis.Client, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	keys, err := rdb.Keys(ctx, "voicebridge:node:*").Result()
	if err == nil && len(keys) != n {
		err = fmt.Errorf("%d node records, want %d", len(keys), n)
	}
	return err
}

// spreadAndReach creates calls through the balancer (round robin), counts
// them per node, then sends every request kind and a bot WebSocket through
// the balancer to each and checks it reached its call.
func spreadAndReach(t *testing.T, c *client, lb string, nodes []*node, total int) {
	// An offer is just text to the bridge: these calls never connect, so
	// one peer's offer serves them all (they are hung up below).
	offer := newPeer(t).offer(t)
	ids := make([]string, total)
	owner := make(map[string]*node, total)
	perNode := map[string]int{}
	start := time.Now()
	for i := range ids {
		resp, body := c.createAt(t, lb, offer)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %d through the balancer: %d %s", i, resp.StatusCode, body)
		}
		id, n := callID(t, resp.Header.Get("Location"), nodes)
		ids[i], owner[id] = id, n
		perNode[n.name]++
	}
	t.Logf("%d calls placed through HAProxy in %v: per node %v", total, time.Since(start).Round(time.Millisecond), perNode)
	for _, n := range nodes {
		if perNode[n.name] < total/6 {
			t.Errorf("%s got %d of %d calls: not spread", n.name, perNode[n.name], total)
		}
	}

	// Bot WebSockets through the balancer on a few calls: each must get its
	// own call's "closed" event when the call is hung up.
	type botConn struct {
		id   string
		conn *websocket.Conn
	}
	var bots []botConn
	for _, id := range ids[:min(len(ids), 6)] {
		h := http.Header{"Authorization": {"Bearer " + c.tok}}
		conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(lb, "http")+"/v1/calls/"+id+"/ws", h)
		if err != nil {
			t.Fatalf("bot WebSocket through the balancer: %v (%v)", err, resp)
		}
		t.Cleanup(func() { conn.Close() })
		bots = append(bots, botConn{id, conn})
	}

	forwarded := 0
	for _, id := range ids {
		in, err := c.get(lb, id)
		if err != nil || in.ID != id || in.State != "new" {
			t.Fatalf("GET %s through the balancer: %+v %v", id, in, err)
		}
		// Text is refused (409-ish) or taken (202) depending on the state;
		// what matters is that the call answered, never a 404 or 5xx.
		resp, b := c.do(t, "POST", lb+"/v1/calls/"+id+"/text", "application/json", []byte(`{"text":"marhaba "}`))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("text %s through the balancer: %d %s", id, resp.StatusCode, b)
		}
		if resp, b := c.do(t, "POST", lb+"/v1/calls/"+id+"/clear", "", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("clear %s through the balancer: %d %s", id, resp.StatusCode, b)
		}
		if resp, b := c.do(t, "DELETE", lb+"/v1/calls/"+id, "", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s through the balancer: %d %s", id, resp.StatusCode, b)
		}
		eventually(t, "the hung-up call to read closed", func() error {
			in, err := c.get(lb, id)
			if err == nil && (in.State != "closed" || in.CloseReason != "hangup") {
				err = fmt.Errorf("%+v", in)
			}
			return err
		})
		// From a node that does not hold it, the call is forwarded.
		for _, n := range nodes {
			if n != owner[id] {
				if in, err := c.get(n.url, id); err != nil || in.ID != id || in.State != "closed" {
					t.Fatalf("GET %s at %s (not its node): %+v %v", id, n.name, in, err)
				}
				forwarded++
				break
			}
		}
	}
	for _, b := range bots {
		_ = b.conn.SetReadDeadline(time.Now().Add(fleetWait))
		for {
			_, msg, err := b.conn.ReadMessage()
			if err != nil {
				t.Fatalf("bot of %s: %v", b.id, err)
			}
			var ev struct{ Type, Reason string }
			_ = json.Unmarshal(msg, &ev)
			if ev.Type == "closed" {
				if ev.Reason != "hangup" {
					t.Errorf("bot of %s: closed %q", b.id, ev.Reason)
				}
				break
			}
		}
	}

	// An unknown call is 404 at every node; a request already forwarded
	// is answered where it lands (never forwarded again).
	for _, n := range nodes {
		resp, b := c.do(t, "GET", n.url+"/v1/calls/NOSUCHCALL", "", nil)
		if resp.StatusCode != http.StatusNotFound || errorCode(b) != "call_not_found" {
			t.Errorf("%s: unknown call: %d %s", n.name, resp.StatusCode, b)
		}
	}
	other := nodes[0]
	if owner[ids[0]] == other {
		other = nodes[1]
	}
	resp, b := c.do(t, "GET", other.url+"/v1/calls/"+ids[0], "", nil, "X-Voicebridge-Forwarded", "elsewhere")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a forwarded request was forwarded again: %d %s", resp.StatusCode, b)
	}
	// Without the token the entry node refuses before any lookup.
	resp, b, err := (&client{hc: c.hc, tok: "wrong"}).try("GET", lb+"/v1/calls/"+ids[0], "", nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %v %v %s", resp, err, b)
	}
}

// forwardOverhead measures POST /text to a call at its node and through
// another node, interleaved, and logs the percentiles.
func forwardOverhead(t *testing.T, c *client, lc *liveCall, via *node) {
	const n = 300
	var direct, forwarded []time.Duration
	body := []byte(`{"text":"a"}`)
	for i := 0; i < n; i++ {
		for _, base := range []string{lc.node.url, via.url} {
			start := time.Now()
			resp, b := c.do(t, "POST", base+"/v1/calls/"+lc.id+"/text", "application/json", body)
			d := time.Since(start)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("text via %s: %d %s", base, resp.StatusCode, b)
			}
			if base == lc.node.url {
				direct = append(direct, d)
			} else {
				forwarded = append(forwarded, d)
			}
		}
		if i%50 == 49 { // keep the call's pending text small
			c.do(t, "POST", lc.node.url+"/v1/calls/"+lc.id+"/clear", "", nil)
		}
	}
	pd50, pd99 := pct(direct, 50), pct(direct, 99)
	pf50, pf99 := pct(forwarded, 50), pct(forwarded, 99)
	t.Logf("POST /text over %d requests each: direct p50 %v p99 %v; through a non-owning node p50 %v p99 %v; added p50 %v p99 %v",
		n, pd50, pd99, pf50, pf99, pf50-pd50, pf99-pd99)
}

// pct is the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(time.Microsecond)
}

func packetsOf(calls []*liveCall) []int {
	var out []int
	for _, lc := range calls {
		p, _, _ := lc.peer.stats()
		out = append(out, p)
	}
	return out
}

// checkPacing checks every call received at least 50 more packets (1 s of
// 20 ms frames) since before, without a sequence gap, and logs the longest
// silence between two packets.
func checkPacing(t *testing.T, calls []*liveCall, before []int, when string) {
	t.Helper()
	for i, lc := range calls {
		eventually(t, "packets to keep coming", func() error {
			if p, _, _ := lc.peer.stats(); p < before[i]+50 {
				return fmt.Errorf("%d packets, had %d", p, before[i])
			}
			return nil
		})
		p, lost, gap := lc.peer.stats()
		if lost != 0 {
			t.Errorf("call on %s %s: %d RTP packets missing", lc.node.name, when, lost)
		}
		t.Logf("call on %s %s: %d packets since, none missing, longest gap %v", lc.node.name, when, p-before[i], gap.Round(time.Millisecond))
	}
}

// redisOutage stops Redis under load: calls keep working at their nodes,
// a call the entry node does not hold is 503 cluster_unavailable, new
// calls are still taken; after the restart the registry is rebuilt.
func redisOutage(t *testing.T, c *client, lb string, rs *redistest.Server, nodes []*node, calls []*liveCall) {
	before := packetsOf(calls)
	rs.Stop()
	stopped := time.Now()
	for _, lc := range calls {
		resp, b := c.do(t, "POST", lc.node.url+"/v1/calls/"+lc.id+"/text", "application/json", []byte(`{"text":"still here"}`))
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("text at the call's own node with Redis down: %d %s", resp.StatusCode, b)
		}
	}
	var elsewhere *node
	for _, n := range nodes {
		if n != calls[0].node {
			elsewhere = n
		}
	}
	for _, path := range []string{"/v1/calls/" + calls[0].id, "/v1/calls/NOSUCHCALL"} {
		resp, b := c.do(t, "GET", elsewhere.url+path, "", nil)
		if resp.StatusCode != http.StatusServiceUnavailable || errorCode(b) != "cluster_unavailable" {
			t.Errorf("GET %s at %s with Redis down: %d %s (want 503 cluster_unavailable)", path, elsewhere.name, resp.StatusCode, b)
		}
	}
	// A new call is still taken by the node the balancer picks.
	during := c.connectAt(t, lb, nodes)
	checkPacing(t, calls, before, "with Redis down")
	t.Logf("Redis down for %v", time.Since(stopped).Round(time.Millisecond))

	rs.Start() // empty: the nodes' heartbeats rebuild it
	restarted := time.Now()
	eventually(t, "the registry rebuilt", func() error {
		for _, lc := range append([]*liveCall{during}, calls...) {
			for _, n := range nodes {
				if in, err := c.get(n.url, lc.id); err != nil || in.State != "connected" {
					return fmt.Errorf("%s at %s: %+v %v", lc.id, n.name, in, err)
				}
			}
		}
		return nil
	})
	t.Logf("registry rebuilt %v after Redis restarted", time.Since(restarted).Round(time.Millisecond))
	if resp, b := c.do(t, "DELETE", lb+"/v1/calls/"+during.id, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE of the call created during the outage: %d %s", resp.StatusCode, b)
	}
}

// drain SIGTERMs nodes[1]: /healthz 503 draining at once, new calls 307 to
// the other node, its calls reachable until they end, then it exits within
// -shutdown-timeout and leaves the registry; its calls read closed/shutdown.
func drain(t *testing.T, c *client, rdb *redis.Client, nodes []*node, calls []*liveCall) {
	stay, leaving := nodes[0], nodes[1]
	var theirs, ours []*liveCall
	for _, lc := range calls {
		if lc.node == leaving {
			theirs = append(theirs, lc)
		} else {
			ours = append(ours, lc)
		}
	}
	before := packetsOf(ours)
	leaving.signal(t, syscall.SIGTERM)
	signalled := time.Now()
	eventually(t, "healthz draining", func() error {
		resp, b, err := c.try("GET", leaving.url+"/healthz", "", nil)
		if err == nil && (resp.StatusCode != http.StatusServiceUnavailable || string(b) != "draining\n") {
			err = fmt.Errorf("%d %q", resp.StatusCode, b)
		}
		return err
	})
	t.Logf("SIGTERM to healthz 503 draining: %v", time.Since(signalled).Round(time.Millisecond))
	p := newPeer(t)
	resp, b := c.createAt(t, leaving.url, p.offer(t))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, stay.url+"/v1/calls") {
		t.Fatalf("create at the draining node: %d %q %s (want 307 to %s)", resp.StatusCode, loc, b, stay.url)
	}
	resp, b = c.createAt(t, strings.TrimSuffix(loc, "/v1/calls"), p.sdp())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create after the 307: %d %s", resp.StatusCode, b)
	}
	id, n := callID(t, resp.Header.Get("Location"), nodes)
	if n != stay {
		t.Errorf("the redirected call landed on %s", n.name)
	}
	if in, err := c.get(stay.url, theirs[0].id); err != nil || in.State != "connected" {
		t.Errorf("draining node's call through the other node: %+v %v", in, err)
	}
	if err := leaving.waitExit(t, 10*time.Second); err != nil {
		t.Errorf("drained node exit: %v", err)
	}
	t.Logf("SIGTERM to exit: %v (-shutdown-timeout 4s)", time.Since(signalled).Round(time.Millisecond))
	if err := wantNodeKeys(rdb, 1); err != nil {
		t.Errorf("after the drain: %v", err)
	}
	for _, lc := range theirs {
		if in, err := c.get(stay.url, lc.id); err != nil || in.State != "closed" || in.CloseReason != "shutdown" {
			t.Errorf("drained node's call: %+v %v (want closed/shutdown)", in, err)
		}
	}
	checkPacing(t, ours, before, "while node2 drained")
	c.do(t, "DELETE", stay.url+"/v1/calls/"+id, "", nil)
}
