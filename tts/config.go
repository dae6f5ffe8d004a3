package tts

import (
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// Defaults of ClientConfig's zero fields.
const (
	DefaultMunsitModel       = "faseeh-mini-v1-preview"
	DefaultInitTimeout       = 10 * time.Second
	DefaultQuietPeriod       = 400 * time.Millisecond
	DefaultFirstAudioTimeout = 10 * time.Second
	DefaultPingInterval      = 15 * time.Second
	DefaultWriteTimeout      = 5 * time.Second
	DefaultReadLimit         = 4 << 20
	DefaultMaxRedials        = 5
	DefaultRedialBackoff     = 200 * time.Millisecond
	DefaultRedialMaxBackoff  = 5 * time.Second
)

// VoiceSettings are the seeds' voice_settings. A nil field is not sent, so
// the service uses its default.
type VoiceSettings struct {
	Stability       *float64 `json:"stability,omitempty"`        // 0..1
	SimilarityBoost *float64 `json:"similarity_boost,omitempty"` // 0..1 (munsit only)
	Speed           *float64 `json:"speed,omitempty"`            // 0.7..1.2 (munsit only)
}

// Validate checks the ranges of the seeds: stability and similarity_boost
// 0..1, speed 0.7..1.2. It returns a *FieldError or nil. Out of range is an
// error, never a clamp.
func (v VoiceSettings) Validate() error {
	check := func(name string, p *float64, lo, hi float64) error {
		if p == nil {
			return nil
		}
		if math.IsNaN(*p) || *p < lo || *p > hi {
			return &FieldError{Field: "voice_settings." + name, Message: fmt.Sprintf("must be between %g and %g", lo, hi)}
		}
		return nil
	}
	if err := check("stability", v.Stability, 0, 1); err != nil {
		return err
	}
	if err := check("similarity_boost", v.SimilarityBoost, 0, 1); err != nil {
		return err
	}
	return check("speed", v.Speed, 0.7, 1.2)
}

func (v VoiceSettings) empty() bool {
	return v.Stability == nil && v.SimilarityBoost == nil && v.Speed == nil
}

// AuthPlacement is where the client puts the API key.
type AuthPlacement int

const (
	// AuthDefault is the dialect's documented default: faseeh the x-api-key
	// header, munsit x_api_key in initConnection.
	AuthDefault AuthPlacement = iota
	// AuthHeader sends the x-api-key handshake header.
	AuthHeader
	// AuthQuery sends the x-api-key query parameter (redacted in logs).
	AuthQuery
	// AuthInitMessage sends x_api_key in initConnection.
	AuthInitMessage
)

// String returns "default", "header", "query" or "init".
func (a AuthPlacement) String() string {
	switch a {
	case AuthDefault:
		return "default"
	case AuthHeader:
		return "header"
	case AuthQuery:
		return "query"
	case AuthInitMessage:
		return "init"
	}
	return fmt.Sprintf("AuthPlacement(%d)", int(a))
}

// outputFormats maps the seeds' output_format values to sample rates.
var outputFormats = map[string]int{"pcm_8000": 8000, "pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000}

// FormatSampleRate returns the sample rate of a munsit output_format
// ("pcm_16000" → 16000) and whether the format is one the seeds define.
func FormatSampleRate(format string) (int, bool) {
	r, ok := outputFormats[format]
	return r, ok
}

// ClientConfig configures a Client. Every zero field takes the default its
// comment names; URL and VoiceID are required (and ModelID for faseeh).
type ClientConfig struct {
	// URL is the ws:// or wss:// URL of the TTS WebSocket.
	URL string
	// Dialect is the protocol URL speaks. If empty, InferDialect(URL).
	Dialect Dialect
	// APIKey is sent as Auth says; empty sends none. It is never logged and
	// is redacted from URLs and error strings.
	APIKey string
	// Auth is where APIKey goes. AuthDefault: faseeh header, munsit
	// initConnection.
	Auth AuthPlacement
	// ModelID is model_id. Munsit: if empty, DefaultMunsitModel is sent.
	// Faseeh: required.
	ModelID string
	// VoiceID is voice_id. Required.
	VoiceID string
	// VoiceSettings are sent as voice_settings (faseeh: stability only; a
	// faseeh config with similarity_boost or speed is refused by Validate).
	VoiceSettings VoiceSettings
	// OutputFormat is munsit's output_format: pcm_8000, pcm_16000,
	// pcm_22050 or pcm_24000. If empty, not sent (service default
	// pcm_24000). Faseeh: validated but never sent (faseeh speaks 24000).
	OutputFormat string
	// LegacyInit sends faseeh's legacy init form ({voice_id, model_id,
	// stability} without "type"). Munsit: refused by Validate.
	LegacyInit bool
	// InitTimeout bounds dial + initConnection + connectionInitialized.
	// If zero, DefaultInitTimeout.
	InitTimeout time.Duration
	// QuietPeriod: when a flushed or triggered generation has delivered
	// audio and then nothing for QuietPeriod, it is taken as ended (for
	// servers that never send isFinal: munsit's seed documents none). While
	// the service is known to send isFinal (faseeh from the start, munsit
	// once one was seen), FirstAudioTimeout is used instead, as a safety
	// net only; a generation that hits it switches back to QuietPeriod.
	// If zero, DefaultQuietPeriod.
	QuietPeriod time.Duration
	// FirstAudioTimeout: a flushed or triggered generation that delivers no
	// audio at all for this long is taken as ended. If zero,
	// DefaultFirstAudioTimeout.
	FirstAudioTimeout time.Duration
	// PingInterval is the keepalive ping period; a connection that answers
	// nothing for two intervals is dropped. If zero, DefaultPingInterval.
	PingInterval time.Duration
	// WriteTimeout is the deadline of every write. If zero,
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ReadLimit is the largest message accepted; a larger one is a protocol
	// error and drops the connection. If zero, DefaultReadLimit (4 MiB).
	ReadLimit int64
	// MaxRedials is how many redials one outage gets before
	// EventRedialFailed. If zero, DefaultMaxRedials; negative: no redial.
	MaxRedials int
	// RedialBackoff is the first redial's delay, doubled per attempt up to
	// RedialMaxBackoff, each with ±50% jitter. If zero,
	// DefaultRedialBackoff / DefaultRedialMaxBackoff.
	RedialBackoff, RedialMaxBackoff time.Duration
	// Logger receives connection-level logs (never per chunk). If nil,
	// logs are discarded.
	Logger *slog.Logger
}

// withDefaults returns c with its zero fields set.
func (c ClientConfig) withDefaults() ClientConfig {
	if c.Dialect == "" {
		c.Dialect = InferDialect(c.URL)
	}
	if c.ModelID == "" && c.Dialect == DialectMunsit {
		c.ModelID = DefaultMunsitModel
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.InitTimeout, DefaultInitTimeout)
	def(&c.QuietPeriod, DefaultQuietPeriod)
	def(&c.FirstAudioTimeout, DefaultFirstAudioTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.RedialBackoff, DefaultRedialBackoff)
	def(&c.RedialMaxBackoff, DefaultRedialMaxBackoff)
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.MaxRedials == 0 {
		c.MaxRedials = DefaultMaxRedials
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks c before any dial: a *FieldError for a missing or
// out-of-range field, or an error wrapping ErrInvalidConfig.
func (c ClientConfig) Validate() error {
	if c.URL == "" {
		return &FieldError{Field: "url", Message: "required"}
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("%w: url does not parse", ErrInvalidConfig) // the text may hold the key
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return &FieldError{Field: "url", Message: "must be a ws:// or wss:// URL"}
	}
	d := c.Dialect
	if d == "" {
		d = InferDialect(c.URL)
	}
	if d != DialectFaseeh && d != DialectMunsit {
		return &FieldError{Field: "dialect", Message: fmt.Sprintf("must be %q or %q", DialectFaseeh, DialectMunsit)}
	}
	if strings.TrimSpace(c.VoiceID) == "" {
		return &FieldError{Field: "voice_id", Message: "required"}
	}
	if d == DialectFaseeh && strings.TrimSpace(c.ModelID) == "" {
		return &FieldError{Field: "model_id", Message: "required by the faseeh dialect"}
	}
	if err := c.VoiceSettings.Validate(); err != nil {
		return err
	}
	if d == DialectFaseeh {
		if c.VoiceSettings.SimilarityBoost != nil {
			return &FieldError{Field: "voice_settings.similarity_boost", Message: "not supported by the faseeh dialect"}
		}
		if c.VoiceSettings.Speed != nil {
			return &FieldError{Field: "voice_settings.speed", Message: "not supported by the faseeh dialect"}
		}
	}
	if c.OutputFormat != "" {
		if _, ok := outputFormats[c.OutputFormat]; !ok {
			return &FieldError{Field: "output_format", Message: "must be pcm_8000, pcm_16000, pcm_22050 or pcm_24000"}
		}
	}
	if c.LegacyInit && d != DialectFaseeh {
		return &FieldError{Field: "legacy_init", Message: "only the faseeh dialect has a legacy init form"}
	}
	if c.LegacyInit && c.Auth == AuthInitMessage {
		return &FieldError{Field: "auth", Message: "the legacy init form has no x_api_key field"}
	}
	if c.Auth < AuthDefault || c.Auth > AuthInitMessage {
		return &FieldError{Field: "auth", Message: "unknown placement"}
	}
	return nil
}

// secret is what errors and logs must never contain: APIKey, or the URL's
// x-api-key when the key travels there.
func (c ClientConfig) secret() string {
	if c.APIKey != "" {
		return c.APIKey
	}
	if u, err := url.Parse(c.URL); err == nil {
		return u.Query().Get("x-api-key")
	}
	return ""
}

// redactURL returns u's text with the x-api-key query value (and key
// anywhere else) replaced by REDACTED.
func redactURL(raw, key string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redact(raw, key)
	}
	q := u.Query()
	if q.Has("x-api-key") {
		q.Set("x-api-key", "REDACTED")
		u.RawQuery = q.Encode()
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return redact(u.String(), key)
}
