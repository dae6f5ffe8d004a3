package bridge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/voicebridge/voicebridge/bridge/sip"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// Server is the bridge: the HTTP API and signaling of the public contract and
// the registry of running calls. Create it with New, serve Handler, and end
// it with Shutdown. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	pion    pionSettings
	iceMux  *iceUDPMux // the WebRTC calls' shared UDP port; nil with -udp-ports
	metrics *metrics
	handler http.Handler

	tokenHash [sha256.Size]byte // of cfg.APIToken; zero when no token
	origins   map[string]bool   // lower-cased allowed origins
	anyOrigin bool
	upgrader  websocket.Upgrader

	ttsURL     string
	ttsDialect tts.Dialect
	embedded   *embeddedTTS // nil with an external TTS

	wg sync.WaitGroup // one per call being created or running (its supervisor)

	cluster *clusterNode // nil without Config.ClusterRedis (cluster.go)

	sipSrv    *sip.Server    // nil without Config.SIPListen (sipcall.go)
	botDialer *sip.BotDialer // -bot-url, for SIP calls
	draining  atomic.Bool    // Drain started: /healthz answers 503

	mu sync.Mutex
	// The following fields are guarded by mu.
	calls   map[string]*Session
	ended   map[string]callInfo // recently ended calls, for GET
	endedQ  []string            // ended's ids, oldest first (bounded)
	pending int                 // calls being created (counted against MaxCalls)
	closing bool                // Shutdown started: no new calls
}

// maxEnded bounds how many ended calls GET /v1/calls/{id} still reports as
// "closed"; older ones are 404.
const maxEnded = 1024

// seams are test hooks; the zero value is production behavior.
type seams struct {
	loopbackOnly bool                   // gather ICE candidates on 127.0.0.1 only
	iceTimeouts  [3]time.Duration       // disconnected, failed, keepalive; zero: Pion's
	ttsServer    ttsserver.ServerConfig // the embedded TTS's configuration (faults)
	heartbeat    time.Duration          // cluster heartbeat; zero: cluster.DefaultHeartbeat
	nodeTTL      time.Duration          // cluster node TTL; zero: cluster.DefaultNodeTTL
}

// New validates cfg, applies its defaults and returns a Server. When
// cfg.TTSURL is empty it starts the embedded TTS on a loopback port (a real
// WebSocket; it is stopped by Shutdown). ctx bounds the start-up only. log
// may be nil (nothing is logged). The returned error wraps ErrInvalidConfig
// for a bad cfg.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	return newServer(ctx, cfg, log, seams{})
}

func newServer(ctx context.Context, cfg Config, log *slog.Logger, sm seams) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		pion:    newPionSettings(cfg),
		metrics: newMetrics(),
		calls:   make(map[string]*Session),
		ended:   make(map[string]callInfo),
		origins: make(map[string]bool),
	}
	if sm.loopbackOnly {
		s.pion.loopbackOnly = true
	}
	if sm.iceTimeouts != [3]time.Duration{} {
		s.pion.hasICETimeouts = true
		s.pion.iceDisconnect, s.pion.iceFailed, s.pion.iceKeepalive = sm.iceTimeouts[0], sm.iceTimeouts[1], sm.iceTimeouts[2]
	}
	if cfg.UDPPortMin == 0 && cfg.UDPPortMax == 0 {
		m, err := listenICEUDPMux(cfg.UDPPort, s.pion, pionLoggerFactory{log: log})
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		s.iceMux, s.pion.udpMux = m, m.mux
	}
	if cfg.APIToken != "" {
		s.tokenHash = sha256.Sum256([]byte(cfg.APIToken))
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			s.anyOrigin = true
		}
		s.origins[normalizeOrigin(o)] = true
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin:     s.originAllowed,
		Error:           s.upgradeError,
	}

	s.ttsURL, s.ttsDialect = cfg.TTSURL, cfg.TTSDialect
	if cfg.TTSURL == "" {
		e, err := startEmbeddedTTS(ctx, cfg, log, sm.ttsServer)
		if err != nil {
			s.closeICEMux()
			return nil, fmt.Errorf("bridge: start embedded TTS: %w", err)
		}
		s.embedded = e
		s.ttsURL, s.ttsDialect = e.url, e.dialect
	}
	if err := s.startCluster(sm); err != nil {
		s.closeICEMux()
		if s.embedded != nil {
			s.embedded.close()
		}
		return nil, fmt.Errorf("bridge: join the cluster: %w", err)
	}
	if err := s.startSIP(); err != nil {
		s.stopCluster()
		s.closeICEMux()
		if s.embedded != nil {
			s.embedded.close()
		}
		return nil, fmt.Errorf("bridge: start SIP: %w", err)
	}
	s.handler = s.routes()
	log.Info("bridge ready", "tts", redactURL(s.ttsURL), "dialect", s.ttsDialect,
		"embedded_tts", s.embedded != nil, "auth", cfg.APIToken != "", "max_calls", cfg.MaxCalls,
		"udp_port", s.UDPPort())
	return s, nil
}

// Handler returns the bridge's whole HTTP surface: the demo page at /,
// /healthz, /metrics, /config.json and the /v1/ API.
func (s *Server) Handler() http.Handler { return s.handler }

// UDPPort is the UDP port all WebRTC calls share (the one to open in a
// firewall), 0 when Config.UDPPortMin/UDPPortMax give each call its own.
func (s *Server) UDPPort() int {
	if s.iceMux == nil {
		return 0
	}
	return s.iceMux.port
}

// closeICEMux closes the shared UDP port, if any.
func (s *Server) closeICEMux() {
	if s.iceMux != nil {
		s.iceMux.close()
	}
}

// Shutdown stops taking calls, ends every running call (its bot sockets get a
// "closed" event with reason "shutdown"), waits for them, closes the shared
// UDP port and stops the embedded TTS. It returns ctx.Err() if ctx ends
// first (calls keep closing in the background, and the port is closed
// after them). Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.stopCluster()
	s.mu.Lock()
	s.closing = true
	calls := make([]*Session, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		c.cancel(ErrShutdown)
	}
	var sipErr error
	if s.sipSrv != nil {
		// BYE to every SIP call; refuse new INVITEs (503), then close.
		sipErr = s.sipSrv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.closeICEMux() // after the calls: their ICE agents use it to the end
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.embedded != nil {
		s.embedded.close()
	}
	if sipErr != nil {
		return sipErr
	}
	s.log.Info("bridge stopped", "calls_ended", len(calls))
	return nil
}

// reserve counts a call being created against MaxCalls. It returns
// ErrShuttingDown or ErrAtCapacity (wrapped); on success the caller must call
// either register or unreserve.
func (s *Server) reserve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		s.metrics.callsRejected.WithLabelValues("shutting_down").Inc()
		return ErrShuttingDown
	case len(s.calls)+s.pending >= s.cfg.MaxCalls:
		s.metrics.callsRejected.WithLabelValues("max_calls").Inc()
		return fmt.Errorf("%w: %d calls running (max-calls)", ErrAtCapacity, s.cfg.MaxCalls)
	}
	s.pending++
	s.wg.Add(1)
	return nil
}

// unreserve gives back a reservation whose call was not created.
func (s *Server) unreserve() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
	s.wg.Done()
}

// register turns a reservation into a running call and starts its
// supervisor, which calls s.wg.Done when the call has been torn down. If
// Shutdown started meanwhile, it returns ErrShuttingDown and the caller must
// close the session and unreserve.
func (s *Server) register(c *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrShuttingDown
	}
	s.pending--
	s.calls[c.id] = c
	s.clusterCallStarted(c)
	s.metrics.callsActive.Inc()
	s.metrics.callsTotal.Inc()
	go func() {
		defer s.wg.Done()
		c.run()
		s.forget(c)
		close(c.done)
	}()
	return nil
}

// forget moves an ended call from the registry to the bounded ended list.
func (s *Server) forget(c *Session) {
	info := c.info()
	s.clusterCallEnded(c.id, info)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.calls, c.id)
	s.metrics.callsActive.Dec()
	s.ended[c.id] = info
	s.endedQ = append(s.endedQ, c.id)
	if len(s.endedQ) > maxEnded {
		delete(s.ended, s.endedQ[0])
		s.endedQ = s.endedQ[1:]
	}
}

// lookup returns the running call id, or ErrCallNotFound.
func (s *Server) lookup(id string) (*Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.calls[id]; ok {
		return c, nil
	}
	return nil, ErrCallNotFound
}

// lookupInfo returns the state of a running or recently ended call.
func (s *Server) lookupInfo(id string) (callInfo, error) {
	s.mu.Lock()
	c, ok := s.calls[id]
	ended, wasEnded := s.ended[id]
	s.mu.Unlock()
	switch {
	case ok:
		return c.info(), nil
	case wasEnded:
		return ended, nil
	}
	return callInfo{}, ErrCallNotFound
}

// newID returns an unguessable call id (130 random bits): without a token,
// knowing a call's id is what lets one speak on it.
func newID() string { return rand.Text() }
