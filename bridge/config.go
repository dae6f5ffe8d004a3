package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/voicebridge/voicebridge/tts"
)

// Defaults of the public contract.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultTTSFormat = "pcm_24000"
	DefaultModel     = "faseeh-mini-v1-preview"
	DefaultVoice     = "ar-najdi-male-2"
)

// Defaults of the bridge's own settings.
const (
	DefaultMaxPendingText      = 64 << 10
	DefaultConnectTimeout      = 30 * time.Second
	DefaultDisconnectedTimeout = 15 * time.Second
	DefaultWHIPTimeout         = 10 * time.Second
)

// callsPerCore sizes the default -max-calls to the machine. Measured by
// make bench on a 2-core machine (README "Performance"): pacing p99 stayed
// within 2 ms with no late frames up to 196 concurrent calls at 40% speech,
// and failed at 218; so about 100 calls per core.
const callsPerCore = 100

// DefaultMaxCalls is the -max-calls default: sized to the machine's cores.
func DefaultMaxCalls() int { return callsPerCore * runtime.NumCPU() }

// Config is the bridge's configuration. The zero value works: every empty
// field takes the default its comment names.
type Config struct {
	// Listen is the HTTP address. If empty, DefaultListen.
	Listen string
	// TTSURL is the ws:// or wss:// URL of a Faseeh/Munsit-style TTS
	// WebSocket. If empty, the embedded TTS is started on loopback.
	TTSURL string
	// TTSDialect is the dialect TTSURL speaks. If empty, inferred from the
	// URL with tts.InferDialect.
	TTSDialect tts.Dialect
	// TTSAPIKey is sent where the dialect documents it. Never logged, never
	// sent to a browser.
	TTSAPIKey string
	// TTSFormat is the requested output format. If empty, DefaultTTSFormat.
	TTSFormat string
	// Model is the default model_id. If empty, DefaultModel.
	Model string
	// Voice is the default voice_id. If empty, DefaultVoice.
	Voice string
	// APIToken, when set, is the bearer token every /v1/ request needs.
	APIToken string
	// MaxCalls caps concurrent calls. If zero, DefaultMaxCalls().
	MaxCalls int

	// AllowedOrigins are the browser origins (scheme://host[:port]) allowed
	// besides the bridge's own, on /v1/ requests and the bot WebSocket. "*"
	// allows any origin. If empty, only same-origin browser requests pass;
	// requests without an Origin header (bots, curl, gateways) always pass.
	AllowedOrigins []string
	// UDPPort is the one UDP port every WebRTC call shares (one socket per
	// local address, udpmux.go). If zero, a free port picked when the
	// Server starts. Ignored with UDPPortMin/UDPPortMax.
	UDPPort int
	// UDPPortMin and UDPPortMax, when set, switch to a UDP socket per call
	// (each ICE host candidate its own port) within MIN-MAX, instead of the
	// shared UDPPort. Both zero: the shared port.
	UDPPortMin, UDPPortMax int
	// PublicIPs, when set, replace the host's addresses in the ICE host
	// candidates of every answer (a NAT 1:1 mapping such as a cloud VM's
	// public IP). If empty, the host's own addresses are offered.
	PublicIPs []string
	// STUNServers are stun: URLs used to gather server-reflexive candidates.
	// If empty, none (the bridge is usually the publicly reachable side).
	STUNServers []string
	// TURNServers are turn: or turns: URLs, with TURNUsername and
	// TURNPassword. If empty, none. TURNPassword is never logged.
	TURNServers  []string
	TURNUsername string
	TURNPassword string
	// MaxPendingText caps the bytes of text a call holds that have not been
	// spoken yet (beyond it text is refused with 429). If zero,
	// DefaultMaxPendingText.
	MaxPendingText int
	// ConnectTimeout ends a call whose client has not connected this long
	// after the answer. If zero, DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// DisconnectedTimeout ends a call whose peer connection stays
	// disconnected this long (the client vanished). If zero,
	// DefaultDisconnectedTimeout.
	DisconnectedTimeout time.Duration

	// SIP front door (config_sip.go). SIPListen is -sip-listen: comma-
	// separated udp:HOST:PORT / tcp:HOST:PORT; empty = no SIP. RTPPortMin
	// and RTPPortMax are -rtp-ports (both zero: ephemeral). BotURL is
	// -bot-url, dialed for every SIP call; it may hold credentials and is
	// never logged. RTPTimeout ends a SIP call without caller RTP for that
	// long; if zero, 30 s.
	SIPListen              string
	RTPPortMin, RTPPortMax int
	BotURL                 string
	RTPTimeout             time.Duration

	// WHIPTimeout bounds a WHIP publish (the offer's POST, redirects
	// included, until the answer) and, separately, the DELETE of its
	// resource when the call ends. If zero, DefaultWHIPTimeout.
	WHIPTimeout time.Duration

	// Cluster (README "Run a fleet"). Both empty: the node runs alone.

	// ClusterRedis is the redis://host:port/db URL (Redis or Valkey) of the
	// fleet's registry. Its password is never logged.
	ClusterRedis string
	// NodeURL is this node's base URL (http[s]://host:port) as other nodes
	// and clients reach it. Required with ClusterRedis.
	NodeURL string
}

// validFormats are the output formats both seeds know.
var validFormats = map[string]int{"pcm_8000": 8000, "pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000}

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("bridge: invalid config")

// WithDefaults returns c with every empty field set to its default.
func (c Config) WithDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.TTSFormat == "" {
		c.TTSFormat = DefaultTTSFormat
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Voice == "" {
		c.Voice = DefaultVoice
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls()
	}
	if c.MaxPendingText == 0 {
		c.MaxPendingText = DefaultMaxPendingText
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.DisconnectedTimeout == 0 {
		c.DisconnectedTimeout = DefaultDisconnectedTimeout
	}
	if c.WHIPTimeout == 0 {
		c.WHIPTimeout = DefaultWHIPTimeout
	}
	if c.TTSDialect == "" && c.TTSURL != "" {
		c.TTSDialect = tts.InferDialect(c.TTSURL)
	}
	return c
}

// Validate reports the first invalid field of c (after defaults), wrapping
// ErrInvalidConfig. Error messages never contain the API key or token.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: listen %q: %v", ErrInvalidConfig, c.Listen, err)
	}
	if c.TTSURL != "" {
		u, err := url.Parse(c.TTSURL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("%w: tts-url must be a ws:// or wss:// URL", ErrInvalidConfig)
		}
	}
	if _, err := tts.ParseDialect(string(c.TTSDialect)); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if _, ok := validFormats[c.TTSFormat]; !ok {
		return fmt.Errorf("%w: tts-format %q (want pcm_8000, pcm_16000, pcm_22050 or pcm_24000)", ErrInvalidConfig, c.TTSFormat)
	}
	if c.MaxCalls < 0 {
		return fmt.Errorf("%w: max-calls %d must be positive", ErrInvalidConfig, c.MaxCalls)
	}
	if c.MaxPendingText < 0 {
		return fmt.Errorf("%w: max-text %d must be positive", ErrInvalidConfig, c.MaxPendingText)
	}
	if c.ConnectTimeout < 0 || c.DisconnectedTimeout < 0 || c.WHIPTimeout < 0 {
		return fmt.Errorf("%w: timeouts must be positive", ErrInvalidConfig)
	}
	if c.UDPPortMin != 0 || c.UDPPortMax != 0 {
		if c.UDPPortMin < 1 || c.UDPPortMax > 65535 || c.UDPPortMin > c.UDPPortMax {
			return fmt.Errorf("%w: udp-ports %d-%d (want MIN-MAX within 1-65535)", ErrInvalidConfig, c.UDPPortMin, c.UDPPortMax)
		}
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("%w: udp-port %d (want 0-65535; 0 picks a free port)", ErrInvalidConfig, c.UDPPort)
	}
	if c.UDPPort != 0 && (c.UDPPortMin != 0 || c.UDPPortMax != 0) {
		return fmt.Errorf("%w: udp-port (one port shared by all calls) and udp-ports (a port per call) exclude each other", ErrInvalidConfig)
	}
	for _, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("%w: public-ip %q is not an IP address", ErrInvalidConfig, ip)
		}
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("%w: allowed origin %q (want scheme://host[:port] or *)", ErrInvalidConfig, o)
		}
	}
	for _, s := range c.STUNServers {
		if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "stuns:") {
			return fmt.Errorf("%w: stun server %q (want stun:host[:port])", ErrInvalidConfig, s)
		}
	}
	for _, s := range c.TURNServers {
		if !strings.HasPrefix(s, "turn:") && !strings.HasPrefix(s, "turns:") {
			return fmt.Errorf("%w: turn server must be a turn: or turns: URL", ErrInvalidConfig)
		}
	}
	if len(c.TURNServers) > 0 && (c.TURNUsername == "" || c.TURNPassword == "") {
		return fmt.Errorf("%w: turn servers need turn-username and turn-password", ErrInvalidConfig)
	}
	if err := c.validateSIP(); err != nil {
		return err
	}
	return c.validateCluster()
}
