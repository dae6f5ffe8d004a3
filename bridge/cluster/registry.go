// Package cluster is the node registry of a voicebridge fleet, kept in Redis
// (or Valkey): which nodes are alive (their URL, calls, room left and whether
// they drain) and which node holds which call.
//
// Everything in Redis is soft state that the nodes rewrite on every
// heartbeat: a node's record expires NodeTTL after its last heartbeat (a
// killed node leaves the registry by itself), a call's key expires CallTTL
// after the last heartbeat of the node holding it. A Redis that restarts
// empty is rebuilt by the next heartbeat of every node. The layout (prefix
// "voicebridge:"):
//
//	node:<node id>  hash {url, calls, room, draining}   PX NodeTTL
//	nodes           sorted set: node id -> expiry (Unix ms), to list nodes
//	call:<call id>  JSON callRecord                      EX CallTTL
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	DefaultHeartbeat = time.Second
	DefaultNodeTTL   = 5 * time.Second
	DefaultCallTTL   = 2 * time.Minute
)

const keyPrefix = "voicebridge:"

// Errors.
var (
	// ErrInvalidConfig: a bad Redis URL or node URL.
	ErrInvalidConfig = errors.New("cluster: invalid config")
	// ErrUnavailable: Redis could not be reached (or answered garbage).
	ErrUnavailable = errors.New("cluster: registry unavailable")
	// ErrUnknownCall: no node has registered the call (or its key expired).
	ErrUnknownCall = errors.New("cluster: unknown call")
	// ErrNoRoom: no other live node has room for a call.
	ErrNoRoom = errors.New("cluster: no other node has room")
)

// Status is what a node reports of itself on each heartbeat.
type Status struct {
	Calls    int  // calls running
	Room     int  // calls it can still take (0 while draining)
	Draining bool // it takes no new calls and is about to leave
}

// Config configures a Registry. Zero durations take the defaults.
type Config struct {
	// RedisURL is redis://[user:password@]host:port[/db] (or rediss://).
	// Its password is never logged.
	RedisURL string
	// NodeURL is this node's base URL as other nodes and clients reach it
	// (http[s]://host:port, no path).
	NodeURL string
	// Status reports the node's state; it is called from the heartbeat
	// goroutine and must not block.
	Status func() Status
	// Heartbeat is how often the node rewrites its record. If zero,
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// NodeTTL is how long a node's record outlives its last heartbeat. If
	// zero, DefaultNodeTTL.
	NodeTTL time.Duration
	// CallTTL is how long a call's key outlives the last heartbeat of its
	// node (after a node dies, its calls read node_lost that long). If
	// zero, DefaultCallTTL.
	CallTTL time.Duration
}

// ValidateRedisURL checks a -cluster-redis value. Its error never contains
// the URL (which may hold a password).
func ValidateRedisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("%w: cluster-redis must be redis://host:port/db (or rediss://)", ErrInvalidConfig)
	}
	if _, err := redis.ParseURL(s); err != nil {
		return fmt.Errorf("%w: cluster-redis: want redis://host:port/db (db a number)", ErrInvalidConfig)
	}
	return nil
}

// NormalizeNodeURL checks a -node-url value and returns it without a
// trailing slash.
func NormalizeNodeURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: node-url %q must be http[s]://host:port (no path, query or user)", ErrInvalidConfig, redact(s))
	}
	return u.Scheme + "://" + u.Host, nil
}

// redact drops user info and query from a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// Node is a live node of the registry.
type Node struct {
	ID  string
	URL string
	Status
}

// Owner is the node holding a call, as the registry knows it.
type Owner struct {
	NodeID    string
	URL       string
	Alive     bool            // the node's record is in the registry
	CreatedAt time.Time       // when the call was created
	Final     json.RawMessage // the call's last state if it ended (nil while it runs)
}

// callRecord is the value of call:<id>.
type callRecord struct {
	Node      string          `json:"node"`
	URL       string          `json:"url"`
	CreatedAt time.Time       `json:"created_at"`
	Final     json.RawMessage `json:"final,omitempty"`
}

// Registry is one node's view of and presence in the registry. Create it
// with New and stop it with Close. Its methods are safe for concurrent use.
type Registry struct {
	cfg Config
	id  string
	rdb *redis.Client
	log *slog.Logger

	kick chan struct{} // a heartbeat now (buffered 1)
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the heartbeat goroutine ends
	// stopCtx ends with Close, cutting a heartbeat stuck on a dead Redis.
	stopCtx    context.Context
	stopCancel context.CancelFunc

	closeOnce sync.Once
	mu        sync.Mutex
	// The following fields are guarded by mu.
	live    map[string]time.Time       // running calls -> created at
	final   map[string]json.RawMessage // ended calls whose tombstone is not written yet
	healthy bool                       // the last write to Redis succeeded
}

// New connects (lazily) to cfg.RedisURL and starts the node's heartbeat: the
// node appears in the registry at once and stays until Close or death. log
// may be nil.
func New(cfg Config, log *slog.Logger) (*Registry, error) {
	if err := ValidateRedisURL(cfg.RedisURL); err != nil {
		return nil, err
	}
	nodeURL, err := NormalizeNodeURL(cfg.NodeURL)
	if err != nil {
		return nil, err
	}
	cfg.NodeURL = nodeURL
	if cfg.Status == nil {
		return nil, fmt.Errorf("%w: no Status func", ErrInvalidConfig)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = DefaultNodeTTL
	}
	if cfg.CallTTL <= 0 {
		cfg.CallTTL = DefaultCallTTL
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster-redis", ErrInvalidConfig)
	}
	// Short timeouts and one retry: a Redis outage must turn into a quick
	// cluster_unavailable, never into requests hanging.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	opt.MaxRetries = 1
	opt.DialerRetries = 1      // a refused dial is an outage now, not after 5 backoffs
	opt.DisableIdentity = true // no CLIENT SETINFO (older Redis, Valkey)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		cfg:     cfg,
		id:      strings.ToLower(rand.Text()[:12]),
		rdb:     redis.NewClient(opt),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		live:    make(map[string]time.Time),
		final:   make(map[string]json.RawMessage),
		healthy: true,
	}
	r.stopCtx, r.stopCancel = context.WithCancel(context.Background())
	r.log = log.With("node_id", r.id)
	routeRedisLog(log)
	go r.heartbeat()
	r.log.Info("cluster registry", "redis", redact(cfg.RedisURL), "node_url", cfg.NodeURL,
		"heartbeat", cfg.Heartbeat, "node_ttl", cfg.NodeTTL)
	return r, nil
}

// ID is this node's id: random per process, so a restarted node is a new
// node and its predecessor's calls read as lost.
func (r *Registry) ID() string { return r.id }

// URL is this node's base URL.
func (r *Registry) URL() string { return r.cfg.NodeURL }

// Healthy reports whether the last write to Redis succeeded.
func (r *Registry) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.healthy
}

// Kick asks for a heartbeat now (e.g. after the node's status changed). It
// never blocks.
func (r *Registry) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// CallStarted records a call this node now holds; the next heartbeat
// publishes it (Publish does it at once). It never blocks on Redis.
func (r *Registry) CallStarted(id string, created time.Time) {
	r.mu.Lock()
	r.live[id] = created
	r.mu.Unlock()
}

// Publish writes call id's key now (the call must have been started), so
// that other nodes find it before the next heartbeat.
func (r *Registry) Publish(ctx context.Context, id string) error {
	r.mu.Lock()
	created, ok := r.live[id]
	r.mu.Unlock()
	if !ok {
		return nil // ended already; its tombstone is on its way
	}
	rec, _ := json.Marshal(callRecord{Node: r.id, URL: r.cfg.NodeURL, CreatedAt: created})
	if err := r.rdb.Set(ctx, keyPrefix+"call:"+id, rec, r.cfg.CallTTL).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// CallEnded records that call id ended with final (its JSON state, served by
// any node after this one is gone). The tombstone is written by the next
// heartbeat and expires CallTTL later. It never blocks on Redis.
func (r *Registry) CallEnded(id string, final json.RawMessage) {
	r.mu.Lock()
	delete(r.live, id)
	r.final[id] = final
	r.mu.Unlock()
	r.Kick()
}

// Update writes this node's record and calls now (as a heartbeat does).
func (r *Registry) Update(ctx context.Context) error { return r.write(ctx) }

// Lookup returns the node holding call id: ErrUnknownCall if no node
// registered it, ErrUnavailable if Redis cannot say.
func (r *Registry) Lookup(ctx context.Context, id string) (Owner, error) {
	b, err := r.rdb.Get(ctx, keyPrefix+"call:"+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return Owner{}, ErrUnknownCall
	}
	if err != nil {
		return Owner{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var rec callRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Node == "" || rec.URL == "" {
		return Owner{}, fmt.Errorf("%w: malformed record of call", ErrUnavailable)
	}
	o := Owner{NodeID: rec.Node, URL: rec.URL, CreatedAt: rec.CreatedAt, Final: rec.Final}
	if rec.Node == r.id {
		o.Alive = true
		return o, nil
	}
	n, err := r.rdb.Exists(ctx, keyPrefix+"node:"+rec.Node).Result()
	if err != nil {
		return Owner{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	o.Alive = n == 1
	return o, nil
}

// Nodes returns the live nodes of the registry (this one included).
func (r *Registry) Nodes(ctx context.Context) ([]Node, error) {
	now := time.Now().UnixMilli()
	if err := r.rdb.ZRemRangeByScore(ctx, keyPrefix+"nodes", "-inf", "("+strconv.FormatInt(now, 10)).Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ids, err := r.rdb.ZRange(ctx, keyPrefix+"nodes", 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, keyPrefix+"node:"+id)
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	nodes := make([]Node, 0, len(ids))
	for i, id := range ids {
		h := cmds[i].Val()
		if h["url"] == "" {
			continue // expired between the two reads
		}
		calls, _ := strconv.Atoi(h["calls"])
		room, _ := strconv.Atoi(h["room"])
		nodes = append(nodes, Node{ID: id, URL: h["url"], Status: Status{Calls: calls, Room: room, Draining: h["draining"] == "1"}})
	}
	return nodes, nil
}

// Placement returns the live node other than this one with the most room
// that is not draining, or ErrNoRoom.
func (r *Registry) Placement(ctx context.Context) (Node, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return Node{}, err
	}
	best := Node{}
	for _, n := range nodes {
		if n.ID == r.id || n.Draining || n.Room <= 0 || n.URL == r.cfg.NodeURL {
			continue
		}
		if n.Room > best.Room {
			best = n
		}
	}
	if best.ID == "" {
		return Node{}, ErrNoRoom
	}
	return best, nil
}

// heartbeat rewrites the node's record every Heartbeat (and on Kick) until
// Close.
func (r *Registry) heartbeat() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(r.stopCtx, r.cfg.Heartbeat+time.Second)
		_ = r.write(ctx)
		cancel()
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// write publishes the node's record, every running call and the pending
// tombstones in one pipeline, and tracks whether Redis is reachable.
func (r *Registry) write(ctx context.Context) error {
	st := r.cfg.Status()
	r.mu.Lock()
	live := make(map[string][]byte, len(r.live))
	for id, created := range r.live {
		live[id], _ = json.Marshal(callRecord{Node: r.id, URL: r.cfg.NodeURL, CreatedAt: created})
	}
	final := make(map[string]json.RawMessage, len(r.final))
	for id, f := range r.final {
		final[id] = f
	}
	r.mu.Unlock()

	nodeKey := keyPrefix + "node:" + r.id
	draining := "0"
	if st.Draining {
		draining = "1"
	}
	pipe := r.rdb.Pipeline()
	pipe.HSet(ctx, nodeKey, "url", r.cfg.NodeURL, "calls", st.Calls, "room", st.Room, "draining", draining)
	pipe.PExpire(ctx, nodeKey, r.cfg.NodeTTL)
	pipe.ZAdd(ctx, keyPrefix+"nodes", redis.Z{Score: float64(time.Now().Add(r.cfg.NodeTTL).UnixMilli()), Member: r.id})
	for id, rec := range live {
		pipe.Set(ctx, keyPrefix+"call:"+id, rec, r.cfg.CallTTL)
	}
	for id, f := range final {
		rec, _ := json.Marshal(callRecord{Node: r.id, URL: r.cfg.NodeURL, Final: f, CreatedAt: createdOf(f)})
		pipe.Set(ctx, keyPrefix+"call:"+id, rec, r.cfg.CallTTL)
	}
	_, err := pipe.Exec(ctx)

	r.mu.Lock()
	was := r.healthy
	r.healthy = err == nil
	if err == nil {
		for id := range final {
			delete(r.final, id)
		}
	}
	r.mu.Unlock()
	switch {
	case err != nil && was:
		r.log.Warn("cluster registry unreachable; serving the calls held here, unknown calls get 503 cluster_unavailable", "err", err)
	case err == nil && !was:
		r.log.Info("cluster registry reachable again; node and calls rewritten", "calls", len(live))
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// createdOf reads created_at from a call's final JSON state, if any.
func createdOf(final json.RawMessage) time.Time {
	var v struct {
		CreatedAt time.Time `json:"created_at"`
	}
	_ = json.Unmarshal(final, &v)
	return v.CreatedAt
}

// Close stops the heartbeat, writes the pending tombstones and removes the
// node from the registry (its calls' keys stay: they read as ended or
// lost). ctx bounds the final writes. Safe to call more than once.
func (r *Registry) Close(ctx context.Context) error {
	var err error
	r.closeOnce.Do(func() {
		close(r.stop)
		r.stopCancel()
		<-r.done
		r.mu.Lock()
		for id := range r.live { // calls still running at exit are lost
			delete(r.live, id)
		}
		r.mu.Unlock()
		// The pending tombstones first. With Redis unreachable, do not wait
		// on it twice: the node's record expires by itself within NodeTTL.
		if err = r.write(ctx); err == nil {
			pipe := r.rdb.Pipeline()
			pipe.Del(ctx, keyPrefix+"node:"+r.id)
			pipe.ZRem(ctx, keyPrefix+"nodes", r.id)
			if _, e := pipe.Exec(ctx); e != nil {
				err = errors.Join(err, fmt.Errorf("%w: %v", ErrUnavailable, e))
			}
		}
		err = errors.Join(err, r.rdb.Close())
		r.log.Info("left the cluster registry", "err", err)
	})
	return err
}
