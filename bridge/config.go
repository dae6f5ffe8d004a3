package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"

	"github.com/voicebridge/voicebridge/tts"
)

// Defaults of the public contract.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultTTSFormat = "pcm_24000"
	DefaultModel     = "faseeh-mini-v1-preview"
	DefaultVoice     = "ar-najdi-male-2"
)

// callsPerCore sizes the default -max-calls to the machine.
const callsPerCore = 250

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
	return nil
}
