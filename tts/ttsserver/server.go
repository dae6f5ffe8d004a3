package ttsserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/voicebridge/voicebridge/tts"
)

// Paths the embedded server serves, as the hosted services do.
const (
	FaseehPath = "/api/v1/text-to-speech"
	MunsitPath = "/api/v1/websocket/text-to-speech"
)

// PathFor returns the service path of dialect d.
func PathFor(d tts.Dialect) string {
	if d == tts.DialectMunsit {
		return MunsitPath
	}
	return FaseehPath
}

// Pace is how fast the embedded server delivers audio, in seconds of audio
// per second of wall time.
type Pace float64

const (
	// PaceDefault (the zero value) delivers at DefaultPace.
	PaceDefault Pace = 0
	// PaceASAP sends every chunk as fast as the connection takes it.
	PaceASAP Pace = -1
	// PaceRealtime sends audio as fast as it plays.
	PaceRealtime Pace = 1
	// PaceSlow is slower than real time: the listener underruns.
	PaceSlow Pace = 0.5
	// DefaultPace: faster than real time, like a hosted TTS.
	DefaultPace Pace = 2
)

// Chunking is how the embedded server cuts audio into messages.
type Chunking int

const (
	// ChunkByDuration (the zero value): ServerConfig.ChunkDuration of audio
	// per message (default 100 ms).
	ChunkByDuration Chunking = iota
	// ChunkFixed: Faults.ChunkBytes bytes per message (odd values split
	// samples).
	ChunkFixed
	// ChunkRandom: 1 to 2×ChunkDuration bytes per message, seeded by
	// Faults.Seed (deterministic).
	ChunkRandom
	// ChunkTiny: 1 to 7 bytes per message.
	ChunkTiny
	// ChunkOdd: ChunkDuration's byte count made odd, so that every other
	// message splits a sample.
	ChunkOdd
)

// Faults inject failures into the embedded server, for tests. The zero
// value injects none.
type Faults struct {
	// Chunking and ChunkBytes choose chunk sizes (see Chunking).
	Chunking   Chunking
	ChunkBytes int
	// Seed seeds ChunkRandom.
	Seed uint64
	// ErrorAfterChunks > 0: after that many audio chunks on a connection,
	// send an error in the dialect's shape (munsit errorCode 50001) and
	// abandon the generation. Once per connection.
	ErrorAfterChunks int
	// DropAfterChunks > 0: after that many audio chunks on a connection,
	// cut the TCP connection without a close frame.
	DropAfterChunks int
	// Times limits ErrorAfterChunks and DropAfterChunks to the first Times
	// connections the server accepts; zero: every connection.
	Times int
	// RefuseAuth refuses every initConnection as a wrong key would be.
	RefuseAuth bool
	// SwitchRateAfterChunks > 0: after that many chunks of a generation the
	// rest is delivered at SwitchRate (a sample-rate change mid-stream).
	SwitchRateAfterChunks int
	SwitchRate            int
	// ClearLag > 0: munsit, after reading {"type":"clear"} the generation
	// under way goes on sending its audio for ClearLag more (at its pace),
	// as a hosted service whose synthesis stops a little after its reader
	// saw the clear. Generations not yet started are dropped at once.
	ClearLag time.Duration
	// ReaderPongs answers WebSocket pings at once from the read loop, as
	// hosted services (and gorilla/websocket's default handler) do, rather
	// than in order with the audio written: a pong then fences nothing.
	ReaderPongs bool
}

// Defaults of ServerConfig's zero fields.
const (
	DefaultChunkDuration   = 100 * time.Millisecond
	DefaultFirstChunkDelay = 150 * time.Millisecond
	DefaultCacheBytes      = 64 << 20
	DefaultServerReadLimit = 1 << 20
)

// ServerConfig configures the embedded TTS server. The zero value works:
// open auth, 100 ms chunks at twice real time, first chunk after 150 ms.
type ServerConfig struct {
	// APIKey, when set, is required: in the x-api-key header, the
	// x-api-key query parameter or initConnection's x_api_key (any of the
	// three; every key given must match). Empty: open.
	APIKey string
	// ChunkDuration is the audio per message. If zero, DefaultChunkDuration.
	ChunkDuration time.Duration
	// FirstChunkDuration is the audio in the first message of each
	// generation (a hosted TTS often sends a short first chunk: 10 to
	// 200 ms). If zero, the first message is like the others. Applies with
	// ChunkByDuration and ChunkOdd.
	FirstChunkDuration time.Duration
	// FirstChunkDelay is the latency from a trigger to its first chunk. If
	// zero, DefaultFirstChunkDelay; negative: none.
	FirstChunkDelay time.Duration
	// Pace is the delivery speed. If zero, DefaultPace.
	Pace Pace
	// MunsitIsFinal makes the munsit dialect end each generation with an
	// isFinal chunk as faseeh does (the munsit seed documents none).
	MunsitIsFinal bool
	// Faults inject failures (tests).
	Faults Faults
	// ESpeakPath is the espeak-ng binary. If empty, "espeak-ng" on PATH.
	// If it cannot be found, a voice-like fallback signal is spoken and a
	// warning is logged once.
	ESpeakPath string
	// CacheBytes bounds the LRU of synthesized PCM. If zero,
	// DefaultCacheBytes.
	CacheBytes int64
	// MaxSynth bounds concurrent espeak-ng processes. If zero, 2×NumCPU.
	MaxSynth int
	// ReadLimit is the largest client message. If zero,
	// DefaultServerReadLimit.
	ReadLimit int64
	// OnMessage, if set, sees every client message as received (raw JSON,
	// key included), on the connection's goroutine. For tests.
	OnMessage func(d tts.Dialect, msg []byte)
	// Logger: if nil, logs are discarded.
	Logger *slog.Logger
}

// Server is the embedded TTS: an http.Handler that speaks the faseeh
// dialect at FaseehPath and the munsit dialect at MunsitPath over real
// WebSockets. Each connection costs two goroutines (reader and writer) and
// a few KiB; synthesis is shared and cached across connections.
type Server struct {
	cfg      ServerConfig
	log      *slog.Logger
	synth    *synth
	upgrader websocket.Upgrader
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup // ServeHTTP calls in flight
	accepted atomic.Int64

	mu       sync.Mutex
	closed   bool                  // guarded by mu
	sessions map[*session]struct{} // guarded by mu
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server; it listens on nothing by itself (see Start).
func NewServer(cfg ServerConfig) *Server {
	if cfg.ChunkDuration <= 0 {
		cfg.ChunkDuration = DefaultChunkDuration
	}
	if cfg.FirstChunkDelay == 0 {
		cfg.FirstChunkDelay = DefaultFirstChunkDelay
	}
	if cfg.Pace == PaceDefault {
		cfg.Pace = DefaultPace
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.MaxSynth <= 0 {
		cfg.MaxSynth = 2 * runtime.NumCPU()
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultServerReadLimit
	}
	if cfg.ESpeakPath == "" {
		cfg.ESpeakPath = "espeak-ng"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "tts-server"),
		sessions: map[*session]struct{}{},
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4 << 10,
			WriteBufferSize: 16 << 10,
			CheckOrigin:     func(*http.Request) bool { return true }, // a dev server; browsers may connect
		},
	}
	s.synth = newSynth(cfg.ESpeakPath, cfg.MaxSynth, cfg.CacheBytes, s.log)
	if s.synth.usingFallback() {
		s.synth.warnOnce.Do(func() {
			s.log.Warn("tts: espeak-ng not found; the embedded TTS speaks a synthetic voice-like signal instead of speech (install espeak-ng: make deps)", "path", cfg.ESpeakPath)
		})
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ServeHTTP upgrades requests at FaseehPath and MunsitPath to WebSockets
// and serves them until the client closes or Close is called. Other paths
// get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var d tts.Dialect
	switch r.URL.Path {
	case FaseehPath:
		d = tts.DialectFaseeh
	case MunsitPath:
		d = tts.DialectMunsit
	default:
		writeHTTPError(w, http.StatusNotFound, "not_found", "no TTS service at this path (try "+FaseehPath+" or "+MunsitPath+")")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeHTTPError(w, http.StatusUpgradeRequired, "websocket_required", "this is a WebSocket endpoint")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusServiceUnavailable, "closed", "the TTS server is shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	ss := newSession(s, d, ws, r)
	s.mu.Lock()
	if s.closed {
		// Close ran during the upgrade and did not see this session: its
		// reader would block on a client that says nothing, and Close's
		// Wait with it.
		s.mu.Unlock()
		ss.abort()
		return
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	ss.serve()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// Close ends every connection, kills running espeak-ng processes and waits
// for all goroutines of the server. New connections get 503. Idempotent.
// (http.Server.Shutdown does not wait for WebSockets: call Close too.)
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	for ss := range s.sessions {
		ss.abort()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.synth.close()
	return nil
}

// Connections returns the number of open WebSocket connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Accepted returns how many WebSocket connections the server has accepted
// since it started (what clients cost it in connections).
func (s *Server) Accepted() int {
	return int(s.accepted.Load())
}

// Syntheses returns how many syntheses have run (cache misses), for tests
// and load reports.
func (s *Server) Syntheses() int {
	s.synth.mu.Lock()
	defer s.synth.mu.Unlock()
	return s.synth.runs
}

func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// Synthesize returns the PCM16LE the server speaks for one generation of
// text with voice at rate (8000, 16000, 22050 or 24000) and speed (1 is
// normal), from the shared cache when it is there. Tests compare what a
// client received with it, byte for byte.
func (s *Server) Synthesize(ctx context.Context, text, voice string, rate int, speed float64) ([]byte, error) {
	return s.synth.pcm(ctx, text, voice, rate, speed)
}
