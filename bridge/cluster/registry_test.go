package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge/cluster/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait; a healthy run ends each in a second or two.
const waitTimeout = 20 * time.Second

// status is a Status a test can change.
type status struct {
	mu sync.Mutex
	st Status
}

func (s *status) get() Status { s.mu.Lock(); defer s.mu.Unlock(); return s.st }
func (s *status) set(st Status) {
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
}

// newNode starts a registry with fast heartbeats, closed at the end of the test.
func newNode(t *testing.T, redisURL, nodeURL string, st *status) *Registry {
	t.Helper()
	r, err := New(Config{RedisURL: redisURL, NodeURL: nodeURL, Status: st.get,
		Heartbeat: 100 * time.Millisecond, NodeTTL: time.Second, CallTTL: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

// eventually polls f until it returns nil or fails the test.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestBadConfig(t *testing.T) {
	st := &status{}
	for _, c := range []Config{
		{RedisURL: "http://127.0.0.1:6379", NodeURL: "http://a:1", Status: st.get},
		{RedisURL: "redis://:s3cret@127.0.0.1:6379/notanumber", NodeURL: "http://a:1", Status: st.get},
		{RedisURL: "redis://127.0.0.1:6379/0", NodeURL: "a:1", Status: st.get},
		{RedisURL: "redis://127.0.0.1:6379/0", NodeURL: "http://a:1/prefix", Status: st.get},
		{RedisURL: "redis://127.0.0.1:6379/0", NodeURL: "http://u:pw@a:1", Status: st.get},
		{RedisURL: "redis://127.0.0.1:6379/0", NodeURL: "http://a:1"},
	} {
		_, err := New(c, nil)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: want ErrInvalidConfig, got %v", c.NodeURL, err)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pw")) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
	if u, err := NormalizeNodeURL("http://10.0.0.1:8080/"); err != nil || u != "http://10.0.0.1:8080" {
		t.Errorf("NormalizeNodeURL: %q %v", u, err)
	}
}

func TestNodesPlacementAndLeaving(t *testing.T) {
	rs := redistest.Start(t)
	sa, sb, sc := &status{st: Status{Room: 0, Calls: 5}}, &status{st: Status{Room: 3}}, &status{st: Status{Room: 7}}
	a := newNode(t, rs.URL(), "http://127.0.0.1:1001", sa)
	b := newNode(t, rs.URL(), "http://127.0.0.1:1002/", sb)
	c := newNode(t, rs.URL(), "http://127.0.0.1:1003", sc)
	eventually(t, "three nodes", func() error {
		ns, err := a.Nodes(ctx(t))
		if err != nil || len(ns) != 3 {
			return errors.Join(err, errors.New("not three"))
		}
		return nil
	})
	n, err := a.Placement(ctx(t))
	if err != nil || n.ID != c.ID() || n.URL != "http://127.0.0.1:1003" || n.Room != 7 {
		t.Fatalf("placement from a: %+v %v (want c)", n, err)
	}
	// c drains: its flag is written at once by Update.
	sc.set(Status{Draining: true})
	if err := c.Update(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Placement(ctx(t)); err != nil || n.ID != b.ID() {
		t.Fatalf("placement with c draining: %+v %v (want b)", n, err)
	}
	if n, err := b.Placement(ctx(t)); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("placement from b (a full, c draining): %+v %v (want ErrNoRoom)", n, err)
	}
	// c leaves with Close: gone at once.
	if err := c.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ns, err := a.Nodes(ctx(t))
	if err != nil || len(ns) != 2 {
		t.Fatalf("after c left: %+v %v", ns, err)
	}
}

// kill stops r's heartbeat without leaving the registry, as a SIGKILL does.
func kill(r *Registry) {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		_ = r.rdb.Close()
	})
}

func TestCallsAndNodeLoss(t *testing.T) {
	rs := redistest.Start(t)
	a := newNode(t, rs.URL(), "http://127.0.0.1:1001", &status{st: Status{Room: 5}})
	b := newNode(t, rs.URL(), "http://127.0.0.1:1002", &status{st: Status{Room: 5}})
	if _, err := b.Lookup(ctx(t), "nope"); !errors.Is(err, ErrUnknownCall) {
		t.Fatalf("unknown call: %v", err)
	}
	created := time.Now().UTC().Truncate(time.Millisecond)
	a.CallStarted("c1", created)
	a.CallStarted("c2", created)
	if err := a.Publish(ctx(t), "c1"); err != nil {
		t.Fatal(err)
	}
	o, err := b.Lookup(ctx(t), "c1")
	if err != nil || o.NodeID != a.ID() || o.URL != "http://127.0.0.1:1001" || !o.Alive || o.Final != nil || !o.CreatedAt.Equal(created) {
		t.Fatalf("lookup c1: %+v %v", o, err)
	}
	eventually(t, "c2 published by a heartbeat", func() error { _, err := b.Lookup(ctx(t), "c2"); return err })

	a.CallEnded("c1", json.RawMessage(`{"id":"c1","state":"closed","close_reason":"hangup"}`))
	eventually(t, "c1's tombstone", func() error {
		o, err := b.Lookup(ctx(t), "c1")
		if err == nil && o.Final == nil {
			err = errors.New("no final state yet")
		}
		return err
	})

	start := time.Now()
	kill(a)
	eventually(t, "a's calls to read as lost", func() error {
		o, err := b.Lookup(ctx(t), "c2")
		if err == nil && o.Alive {
			err = errors.New("still alive")
		}
		return err
	})
	t.Logf("killed node lost after %v (NodeTTL 1s)", time.Since(start).Round(10*time.Millisecond))
	if ns, err := b.Nodes(ctx(t)); err != nil || len(ns) != 1 || ns[0].ID != b.ID() {
		t.Fatalf("nodes after a died: %+v %v", ns, err)
	}
	if o, err := b.Lookup(ctx(t), "c1"); err != nil || o.Alive || !strings.Contains(string(o.Final), "hangup") {
		t.Fatalf("c1 after a died: %+v %v", o, err)
	}
}

func TestRedisRestartRebuilds(t *testing.T) {
	rs := redistest.Start(t)
	a := newNode(t, rs.URL(), "http://127.0.0.1:1001", &status{st: Status{Room: 5}})
	b := newNode(t, rs.URL(), "http://127.0.0.1:1002", &status{st: Status{Room: 5}})
	a.CallStarted("c1", time.Now())
	eventually(t, "c1 published", func() error { _, err := b.Lookup(ctx(t), "c1"); return err })

	rs.Stop()
	if _, err := b.Lookup(ctx(t), "c1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lookup with Redis down: %v (want ErrUnavailable)", err)
	}
	if _, err := b.Placement(ctx(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("placement with Redis down: %v (want ErrUnavailable)", err)
	}
	eventually(t, "a to notice the outage", func() error {
		if a.Healthy() {
			return errors.New("healthy")
		}
		return nil
	})
	rs.Start() // empty
	eventually(t, "the registry rebuilt", func() error {
		o, err := b.Lookup(ctx(t), "c1")
		if err != nil {
			return err
		}
		if !o.Alive || o.NodeID != a.ID() {
			return errors.New("c1 not alive on a")
		}
		ns, err := b.Nodes(ctx(t))
		if err == nil && len(ns) != 2 {
			err = errors.New("not two nodes")
		}
		return err
	})
	if !a.Healthy() {
		t.Error("a still reports unhealthy")
	}
}
