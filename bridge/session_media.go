package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/web"
)

// callStats are the media counters of a call.
type callStats struct{ framesSent, speechFrames, lateFrames uint64 }

func (c *Session) newMedia() error                                 { return nil }
func (c *Session) dialTTS(context.Context) error                   { return nil }
func (c *Session) startPacer()                                     { c.wg.Go(func() { close(c.pacerDone) }) }
func (c *Session) closeTTS()                                       {}
func (c *Session) closeMedia()                                     {}
func (c *Session) stats() callStats                                { return callStats{} }
func (c *Session) framesSent() uint64                              { return c.stats().framesSent }
func (c *Session) speak(context.Context, string, bool, bool) error { return nil }
func (c *Session) clear(context.Context) error                     { return nil }

// resolveOptions fills a call's empty options from the Config and validates
// them (a *tts.FieldError or ErrInvalidField for a bad one).
func (s *Server) resolveOptions(o callOptions) (callOptions, error) {
	if o.VoiceID == "" {
		o.VoiceID = s.cfg.Voice
	}
	if o.ModelID == "" {
		o.ModelID = s.cfg.Model
	}
	if o.OutputFormat == "" {
		o.OutputFormat = s.cfg.TTSFormat
	}
	if len(o.VoiceID) > maxIDLen || len(o.ModelID) > maxIDLen || strings.TrimSpace(o.VoiceID) == "" {
		return o, fmt.Errorf("%w: voice_id and model_id must be 1 to %d bytes", ErrInvalidField, maxIDLen)
	}
	if _, ok := validFormats[o.OutputFormat]; !ok {
		return o, fmt.Errorf("%w: output_format: must be pcm_8000, pcm_16000, pcm_22050 or pcm_24000", ErrInvalidField)
	}
	return o, validateVoiceSettings(o.VoiceSettings)
}

// embeddedTTS is the TTS server voicebridge runs on loopback by default.
type embeddedTTS struct {
	url     string
	dialect tts.Dialect
}

func startEmbeddedTTS(context.Context, Config, *slog.Logger) (*embeddedTTS, error) {
	return &embeddedTTS{url: "ws://127.0.0.1:1/api/v1/websocket/text-to-speech", dialect: tts.DialectMunsit}, nil
}

func (e *embeddedTTS) close() {}

// rootHandler serves the demo page.
func rootHandler() http.Handler { return web.Handler() }

// validateVoiceSettings checks the seeds' ranges: stability and
// similarity_boost 0..1, speed 0.7..1.2. Out of range is an error, never a
// clamp.
func validateVoiceSettings(v voiceSettings) error {
	check := func(name string, p *float64, lo, hi float64) error {
		if p != nil && !(*p >= lo && *p <= hi) {
			return fmt.Errorf("%w: voice_settings.%s: must be between %g and %g", ErrInvalidField, name, lo, hi)
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
