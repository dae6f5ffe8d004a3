package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/voicebridge/voicebridge/bridge/cluster"
)

// forwardedHeader marks a request one node forwarded to another (its value
// is the forwarding node's id). A request carrying it is always answered
// locally, so forwarding can never loop.
const forwardedHeader = "X-Voicebridge-Forwarded"

// registryTimeout bounds the Redis round trips of one request.
const registryTimeout = time.Second

// clusterNode is the Server's part in a fleet (Config.ClusterRedis): its
// registry and the reverse proxy to the other nodes.
type clusterNode struct {
	reg       *cluster.Registry
	proxy     *httputil.ReverseProxy
	transport *http.Transport // the proxy's, to the other nodes
	// requests counts the requests the cluster layer answered or passed on,
	// by outcome: forwarded, redirected, node_lost, unavailable.
	requests *prometheus.CounterVec
	tunnels  tunnels // forwarded bot WebSockets, closed by Shutdown
}

// proxyTarget is the context key of a forwarded request's node URL.
type proxyTarget struct{}

// validateCluster checks the cluster fields of c.
func (c Config) validateCluster() error {
	switch {
	case c.ClusterRedis == "" && c.NodeURL == "":
		return nil
	case c.ClusterRedis == "":
		return fmt.Errorf("%w: node-url needs cluster-redis", ErrInvalidConfig)
	case c.NodeURL == "":
		return fmt.Errorf("%w: cluster-redis needs node-url (this node's base URL as other nodes reach it)", ErrInvalidConfig)
	}
	if err := cluster.ValidateRedisURL(c.ClusterRedis); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, clusterDetail(err))
	}
	if _, err := cluster.NormalizeNodeURL(c.NodeURL); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, clusterDetail(err))
	}
	return nil
}

// clusterDetail is a cluster config error's text without its prefix.
func clusterDetail(err error) string {
	return strings.TrimPrefix(err.Error(), cluster.ErrInvalidConfig.Error()+": ")
}

// startCluster joins the fleet when Config.ClusterRedis is set: the node
// appears in the registry (Redis need not be up yet; the heartbeat retries).
func (s *Server) startCluster(sm seams) error {
	if s.cfg.ClusterRedis == "" {
		return nil
	}
	reg, err := cluster.New(cluster.Config{
		RedisURL:  s.cfg.ClusterRedis,
		NodeURL:   s.cfg.NodeURL,
		Status:    s.clusterStatus,
		Heartbeat: sm.heartbeat,
		NodeTTL:   sm.nodeTTL,
	}, s.log)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 64
	tr.Proxy = nil // node to node, never through an environment proxy
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicebridge_cluster_requests_total",
		Help: "Requests the cluster layer handled, by outcome: forwarded (to the node holding the call), redirected (307 of POST /v1/calls), node_lost, unavailable (registry unreachable).",
	}, []string{"outcome"})
	for _, o := range []string{"forwarded", "redirected", "node_lost", "unavailable"} {
		requests.WithLabelValues(o)
	}
	s.metrics.reg.MustRegister(requests)
	s.cluster = &clusterNode{reg: reg, requests: requests, transport: tr, proxy: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(proxyTarget{}).(*url.URL))
			pr.Out.Host = pr.In.Host // the owner checks Origin against the host the client used
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, reg.ID())
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			s.log.Warn("forward failed", "path", r.URL.Path, "err", err)
			writeError(w, r, s.log, ErrNodeUnreachable)
		},
	}}
	return nil
}

// stopCluster closes the forwarded bot WebSockets and leaves the registry
// (pending tombstones written first). The calls' keys stay, so other nodes
// read them as ended or lost.
func (s *Server) stopCluster() {
	if s.cluster == nil {
		return
	}
	if n := s.cluster.tunnels.closeAll(); n > 0 {
		s.log.Info("closed forwarded bot WebSockets", "count", n)
	}
	s.cluster.transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cluster.reg.Close(ctx); err != nil {
		s.log.Warn("leaving the cluster registry", "err", err)
	}
}

// clusterStatus is the node's heartbeat: calls, room and draining.
func (s *Server) clusterStatus() cluster.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := s.cfg.MaxCalls - len(s.calls) - s.pending
	if s.closing || room < 0 {
		room = 0
	}
	return cluster.Status{Calls: len(s.calls), Room: room, Draining: s.closing}
}

// clusterCallStarted records a new call in the registry (published by the
// next heartbeat, or at once by placedWriter). Called with s.mu held; it
// does no I/O.
func (s *Server) clusterCallStarted(c *Session) {
	if s.cluster != nil {
		s.cluster.reg.CallStarted(c.id, c.created.UTC())
	}
}

// clusterCallEnded leaves the ended call's final state in the registry, so
// any node answers GET for it even after this node is gone.
func (s *Server) clusterCallEnded(id string, info callInfo) {
	if s.cluster == nil {
		return
	}
	b, err := json.Marshal(info)
	if err != nil {
		return
	}
	s.cluster.reg.CallEnded(id, b)
}

// Drain stops taking calls (POST /v1/calls is sent to other nodes, /healthz
// answers 503 "draining", the registry learns it at once) and waits until
// the running calls have ended by themselves or ctx ends. The calls still
// running are then ended by Shutdown. Safe to call more than once.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	running := len(s.calls) + s.pending
	s.mu.Unlock()
	s.draining.Store(true)
	s.log.Info("draining", "calls", running)
	if s.cluster != nil {
		uctx, cancel := context.WithTimeout(ctx, registryTimeout)
		if err := s.cluster.reg.Update(uctx); err != nil {
			s.log.Warn("draining: registry not updated (the heartbeat retries)", "err", err)
		}
		cancel()
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		running = len(s.calls) + s.pending
		s.mu.Unlock()
		if running == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// healthz answers 503 "draining" once Drain started, else next.
func (s *Server) healthz(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("draining\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clusterAPI wraps the /v1/ API of a fleet node (after origin and token
// checks): placement of POST /v1/calls and forwarding of /v1/calls/{id}...
// to the node holding the call. Without a cluster it is next.
func (s *Server) clusterAPI(next http.Handler) http.Handler {
	if s.cluster == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/calls" && r.Method == http.MethodPost:
			s.place(w, r, next)
		case strings.HasPrefix(r.URL.Path, "/v1/calls/"):
			s.reach(w, r, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// hasRoom reports whether this node takes a new call now.
func (s *Server) hasRoom() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing && len(s.calls)+s.pending < s.cfg.MaxCalls
}

// place answers POST /v1/calls: here while the node has room, else 307 to
// the node with the most room; with no such node (or no registry) the
// create handler refuses with its own 503 (max_calls or shutting_down).
func (s *Server) place(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if s.hasRoom() {
		next.ServeHTTP(&placedWriter{ResponseWriter: w, s: s, ctx: r.Context()}, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), registryTimeout)
	n, err := s.cluster.reg.Placement(ctx)
	cancel()
	if err != nil {
		s.log.Debug("no node to redirect a new call to", "err", err)
		next.ServeHTTP(w, r)
		return
	}
	s.cluster.requests.WithLabelValues("redirected").Inc()
	w.Header().Set("Location", n.URL+r.URL.RequestURI())
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// placedWriter makes a created call's Location absolute (this node's URL)
// and publishes the call in the registry before the 201 goes out, so the
// client can reach it through any node at once.
type placedWriter struct {
	http.ResponseWriter
	s     *Server
	ctx   context.Context
	wrote bool
}

func (w *placedWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if loc := w.Header().Get("Location"); code == http.StatusCreated && strings.HasPrefix(loc, "/v1/calls/") {
			reg := w.s.cluster.reg
			if reg.Healthy() {
				ctx, cancel := context.WithTimeout(w.ctx, registryTimeout)
				if err := reg.Publish(ctx, strings.TrimPrefix(loc, "/v1/calls/")); err != nil {
					w.s.log.Warn("call not published yet (the heartbeat retries)", "err", err)
				}
				cancel()
			}
			w.Header().Set("Location", reg.URL()+loc)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *placedWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *placedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// holds reports whether this node knows call id (running or recently ended).
func (s *Server) holds(id string) bool {
	_, err := s.lookupInfo(id)
	return err == nil
}

// reach serves /v1/calls/{id}...: here when this node knows the call (or
// the request was forwarded already), else from the node the registry names.
// A call whose node is gone reads closed/node_lost (GET) and is 410
// node_lost for anything else; an unknown call is 404 as on one node; with
// the registry unreachable an unknown call is 503 cluster_unavailable.
func (s *Server) reach(w http.ResponseWriter, r *http.Request, next http.Handler) {
	id, sub, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/calls/"), "/")
	if id == "" || len(id) > maxIDLen || r.Header.Get(forwardedHeader) != "" || s.holds(id) {
		next.ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), registryTimeout)
	o, err := s.cluster.reg.Lookup(ctx, id)
	cancel()
	isGet := r.Method == http.MethodGet && sub == ""
	switch {
	case errors.Is(err, cluster.ErrUnknownCall):
		next.ServeHTTP(w, r)
	case err != nil:
		s.log.Warn("call lookup failed", "err", err)
		s.cluster.requests.WithLabelValues("unavailable").Inc()
		writeError(w, r, s.log, ErrClusterUnavailable)
	case o.NodeID == s.cluster.reg.ID():
		next.ServeHTTP(w, r) // ours, but no longer known: 404
	case o.Alive:
		s.forward(w, r, o.URL)
	case o.Final != nil && isGet:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(o.Final, '\n'))
	case o.Final != nil:
		next.ServeHTTP(w, r) // ended: 404, as on its own node
	case isGet:
		s.cluster.requests.WithLabelValues("node_lost").Inc()
		writeJSON(w, http.StatusOK, callInfo{ID: id, State: stateClosed, CreatedAt: o.CreatedAt, CloseReason: "node_lost"})
	default:
		s.cluster.requests.WithLabelValues("node_lost").Inc()
		writeError(w, r, s.log, ErrNodeLost)
	}
}

// forward proxies r (HTTP or a WebSocket upgrade) to the node at nodeURL,
// with its Authorization, query and body.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, nodeURL string) {
	u, err := url.Parse(nodeURL)
	if err != nil {
		writeError(w, r, s.log, ErrNodeUnreachable)
		return
	}
	if websocketUpgrade(r) {
		// The server's read timeout would cut the tunnel: lift it, as the
		// WebSocket upgrader does for a socket served here.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		w = &tunnelWriter{ResponseWriter: w, ts: &s.cluster.tunnels}
	}
	// The owner answers CORS itself; drop what the entry node's v1 wrapper
	// set, or the headers would be doubled (browsers refuse that).
	h := w.Header()
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary"} {
		h.Del(k)
	}
	s.cluster.requests.WithLabelValues("forwarded").Inc()
	s.cluster.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyTarget{}, u)))
}
