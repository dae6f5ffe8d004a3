package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicebridge/voicebridge/media"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
	"github.com/voicebridge/voicebridge/web"
)

// callStats are the media counters of a call.
type callStats struct{ framesSent, speechFrames, lateFrames uint64 }

// resolveOptions fills a call's empty options from the Config and validates
// them as the TTS client will (a *tts.FieldError or ErrInvalidField for a
// bad one), before anything is built.
func (s *Server) resolveOptions(o callOptions) (callOptions, error) {
	if o.VoiceID == "" {
		o.VoiceID = s.cfg.Voice
	}
	if o.ModelID == "" {
		o.ModelID = s.cfg.Model
	}
	o.formatNamed = o.OutputFormat != ""
	if o.OutputFormat == "" {
		o.OutputFormat = s.cfg.TTSFormat
	}
	if len(o.VoiceID) > maxIDLen || len(o.ModelID) > maxIDLen || strings.TrimSpace(o.VoiceID) == "" {
		return o, fmt.Errorf("%w: voice_id and model_id must be 1 to %d bytes", ErrInvalidField, maxIDLen)
	}
	if _, ok := validFormats[o.OutputFormat]; !ok {
		return o, fmt.Errorf("%w: output_format: must be pcm_8000, pcm_16000, pcm_22050 or pcm_24000", ErrInvalidField)
	}
	return o, s.ttsConfig(o, nil).Validate()
}

// ttsConfig is the TTS client configuration of a call.
func (s *Server) ttsConfig(o callOptions, log *slog.Logger) tts.ClientConfig {
	return tts.ClientConfig{
		URL:           s.ttsURL,
		Dialect:       s.ttsDialect,
		APIKey:        s.cfg.TTSAPIKey,
		ModelID:       o.ModelID,
		VoiceID:       o.VoiceID,
		VoiceSettings: o.VoiceSettings,
		OutputFormat:  o.OutputFormat,
		Logger:        log,
	}
}

// newMedia builds the call's media stream onto its track. The pacer starts
// once the peer connects (startPacer), so speech sent before that is queued,
// not played into the void.
// cfg names the transport's side (Writer, and Codec and DTMFPayloadType
// for a SIP call); the rest is the call's.
func (c *Session) newMedia(cfg media.StreamConfig) error {
	m := c.srv.metrics
	var st *media.Stream
	cfg.OnEvent = c.onStreamEvent
	cfg.OnFrame = m.onFrame
	cfg.OnClose = func(final media.Stats) { m.streams.streamClosed(st, final) }
	cfg.Logger = c.log
	st, err := media.NewStream(cfg)
	if err != nil {
		return fmt.Errorf("new media stream: %w", err)
	}
	m.streams.add(st)
	c.stream = st
	return nil
}

// dialTTS connects the call's TTS client (dial, initConnection,
// connectionInitialized), so the first text is not slowed by a handshake.
// A refusal is returned as the *tts.Error (502 with the service's code and
// message).
func (c *Session) dialTTS(ctx context.Context) error {
	cl, err := tts.Dial(ctx, c.srv.ttsConfig(c.opts, c.log), ttsHandler{c})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", ErrTTSUnavailable, context.Cause(ctx))
		}
		return err
	}
	c.tts = cl
	return nil
}

// startPacer runs the media stream's pacer as one of the call's goroutines.
func (c *Session) startPacer() {
	c.wg.Go(func() {
		defer close(c.pacerDone)
		_ = c.stream.Run(c.ctx)
	})
}

// closeTTS closes the TTS connection (closeConnection, then waits for the
// client's goroutines; a Handler blocked in stream.Write is released by the
// call's cancelled context).
func (c *Session) closeTTS() {
	if c.tts != nil {
		_ = c.tts.Close()
	}
}

// closeMedia frees the codec.
func (c *Session) closeMedia() {
	if c.stream != nil {
		_ = c.stream.Close()
	}
}

func (c *Session) stats() callStats {
	if c.stream == nil {
		return callStats{}
	}
	st := c.stream.Stats()
	return callStats{framesSent: st.FramesSent, speechFrames: st.SpeechFrames, lateFrames: st.LateFrames}
}

func (c *Session) framesSent() uint64 { return c.stats().framesSent }

// playState is the handoff from the call's TTS client to its media stream.
// Its zero value is ready.
type playState struct {
	gate writeGate
	// ends counts generation ends not yet applied to the text cap: the TTS
	// client reports them while a clear may hold textMu and wait for the
	// client, so they are applied by the next speak, under textMu.
	ends atomic.Int64
}

// writeGate holds the context the TTS handler's stream writes wait on, so
// that a clear can cut a write blocked on a full queue at once.
type writeGate struct {
	mu     sync.Mutex
	ctx    context.Context // guarded by mu; nil until first used
	cancel context.CancelFunc
}

// get returns the current write context (a child of parent).
func (g *writeGate) get(parent context.Context) context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil {
		g.ctx, g.cancel = context.WithCancel(parent)
	}
	return g.ctx
}

// close cancels the current write context: a write in progress returns,
// and writes until reopen return at once (their audio is dropped).
func (g *writeGate) close(parent context.Context) {
	g.get(parent)
	g.mu.Lock()
	g.cancel()
	g.mu.Unlock()
}

// reopen installs a fresh write context.
func (g *writeGate) reopen(parent context.Context) {
	g.mu.Lock()
	if g.cancel != nil {
		g.cancel()
	}
	g.ctx, g.cancel = context.WithCancel(parent)
	g.mu.Unlock()
}

// speak appends text to the call's TTS stream, as the seeds describe. Calls
// are serialized, so text from the HTTP API and bot sockets is spoken in the
// order it was accepted.
//
// The text cap: speak returns ErrTextBufferFull when the text accepted
// since the TTS last ended a generation (or since the last clear) would
// exceed Config.MaxPendingText. A generation's end releases all triggered
// text, not only its own: when the TTS client infers the end by a quiet
// period (munsit sends no isFinal) it ends every outstanding generation at
// once, so the cap bounds what a bot can pile up between two generation
// ends.
func (c *Session) speak(ctx context.Context, text string, flush, trigger bool) error {
	c.textMu.Lock()
	defer c.textMu.Unlock()
	if c.play.ends.Swap(0) > 0 {
		c.pendingText = c.untriggered
		c.generating = false
	}
	if c.pendingText+len(text) > c.srv.cfg.MaxPendingText {
		return fmt.Errorf("%w: %d bytes waiting (limit %d); send clear or wait for done",
			ErrTextBufferFull, c.pendingText, c.srv.cfg.MaxPendingText)
	}
	if err := c.tts.SendText(ctx, text, flush, trigger); err != nil {
		if errors.Is(err, tts.ErrClosed) {
			return ErrCallNotFound
		}
		return err
	}
	c.pendingText += len(text)
	c.untriggered += len(text)
	if flush || trigger {
		if !c.generating {
			c.ttfbStart.Store(time.Now().UnixNano()) // measure from an idle TTS only
		}
		c.generating = true
		c.untriggered = 0
		c.markTriggered()
	}
	return nil
}

// clear is barge-in. Nothing in it waits on the network:
//  1. the write gate closes: a stream write blocked on a full queue
//     returns at once, and audio the TTS client delivers from now until
//     step 4 is dropped;
//  2. the TTS client clears (it waits only for a delivery in progress, now
//     quick): nothing read from the service for text sent before the clear
//     is delivered after it, whatever the service does (tts.Client.Clear);
//  3. the playout queue is dropped: the next frame on the wire is silence;
//  4. the gate reopens.
//
// No text can be sent meanwhile (textMu), so no audio of new text exists
// before step 4. Until step 3 the pacer may still send queued frames of
// the interrupted generation, contiguous with what it sent before; after
// it, none. Unsent text is forgotten.
func (c *Session) clear(ctx context.Context) error {
	c.textMu.Lock()
	defer c.textMu.Unlock()
	c.play.gate.close(c.ctx)
	err := c.tts.Clear(ctx)
	c.stream.Clear()
	c.clearMarks()
	c.play.gate.reopen(c.ctx)
	c.play.ends.Store(0)
	c.pendingText, c.untriggered, c.generating = 0, 0, false
	c.ttfbStart.Store(0)
	c.firstAudio.Store(0)
	if errors.Is(err, tts.ErrClosed) {
		return ErrCallNotFound
	}
	return err
}

// generationEnded releases all triggered text from the pending count, at
// the next speak (see playState.ends).
func (c *Session) generationEnded() {
	c.play.ends.Add(1)
}

// onStreamEvent turns playout events into bot events. It runs on the pacer
// goroutine and must not block: broadcast only queues.
func (c *Session) onStreamEvent(e media.Event) {
	switch e.Kind {
	case media.EventSpeaking:
		if t := c.firstAudio.Swap(0); t != 0 {
			c.srv.metrics.addedLatency.Observe(e.At.Sub(time.Unix(0, t)).Seconds())
		}
		c.broadcast(msgSpeaking)
	case media.EventDone:
		c.broadcast(msgDone)
	case media.EventMark:
		c.markStreamEvent(e)
	}
}

// ttsHandler receives what the call's TTS client reads, on the client's
// one goroutine, in wire order.
type ttsHandler struct{ c *Session }

var _ tts.Handler = ttsHandler{}

// Audio queues PCM for the pacer; it blocks while the queue is full
// (back-pressure on the TTS connection) until the call ends.
func (h ttsHandler) Audio(pcm []byte, sampleRate int) {
	c := h.c
	if t := c.ttfbStart.Swap(0); t != 0 {
		now := time.Now()
		c.srv.metrics.ttsTTFB.Observe(now.Sub(time.Unix(0, t)).Seconds())
		c.firstAudio.Store(now.UnixNano())
	}
	wctx := c.play.gate.get(c.ctx)
	if err := c.stream.Write(wctx, pcm, sampleRate); err != nil && !errors.Is(err, media.ErrCleared) && wctx.Err() == nil {
		c.log.Warn("audio dropped", "err", err, "sample_rate", sampleRate)
		c.broadcastError(err)
	}
}

// GenerationEnd flushes the resampler's tail and pads the last frame; the
// stream reports done when that frame is on the wire.
func (h ttsHandler) GenerationEnd() {
	c := h.c
	c.generationEnded()
	wctx := c.play.gate.get(c.ctx)
	if err := c.stream.EndGeneration(wctx); err != nil && !errors.Is(err, media.ErrCleared) && wctx.Err() == nil {
		c.log.Warn("end of generation", "err", err)
	}
	c.markGenerationEnded()
}

// Event reports TTS trouble: an error event on the bot sockets, a log line
// and a metric. The call goes on; the client redials by itself.
func (h ttsHandler) Event(e tts.Event) {
	c, m := h.c, h.c.srv.metrics
	switch e.Kind {
	case tts.EventError:
		m.ttsErrors.WithLabelValues("error").Inc()
		c.log.Warn("tts error", "err", e.Err)
		c.broadcastError(e.Err)
	case tts.EventDisconnected:
		m.ttsErrors.WithLabelValues("disconnected").Inc()
		c.log.Warn("tts connection lost; redialing", "err", e.Err)
		c.broadcastEvent(botEvent{Type: "error", Code: "tts_disconnected",
			Message: "the TTS connection dropped; reconnecting (text not yet being spoken will be spoken)"})
	case tts.EventReconnected:
		m.ttsReconnects.Inc()
		c.log.Info("tts reconnected")
	case tts.EventInterrupted:
		m.ttsErrors.WithLabelValues("interrupted").Inc()
		c.log.Warn("tts connection cut a generation; it is not spoken again", "bytes", len(e.Text))
		c.broadcastEvent(botEvent{Type: "error", Code: "tts_interrupted",
			Message: "the TTS connection dropped during this text's speech; the caller heard its start, so it is not spoken again (send it again if needed)",
			Text:    e.Text})
	case tts.EventRedialFailed:
		m.ttsErrors.WithLabelValues("redial_failed").Inc()
		c.log.Warn("tts redials failed; the next text retries", "err", e.Err)
		c.broadcastEvent(botEvent{Type: "error", Code: "tts_unavailable",
			Message: "could not reconnect to the TTS service; the next text retries"})
	}
}

// embeddedTTS is the TTS server voicebridge runs on loopback by default: a
// real WebSocket server, so the client is exercised as against a hosted one.
type embeddedTTS struct {
	rs      *ttsserver.RunningServer
	url     string
	dialect tts.Dialect
}

// startEmbeddedTTS starts the embedded TTS on a free loopback port. It speaks
// cfg.TTSDialect, munsit if empty (it has clear, flush and output_format).
// It lives until close, whatever ctx does.
func startEmbeddedTTS(ctx context.Context, cfg Config, log *slog.Logger, scfg ttsserver.ServerConfig) (*embeddedTTS, error) {
	d := cfg.TTSDialect
	if d == "" {
		d = tts.DialectMunsit
	}
	if scfg.Logger == nil {
		scfg.Logger = log.With("component", "embedded-tts")
	}
	rs, err := ttsserver.Start(context.WithoutCancel(ctx), "127.0.0.1:0", scfg)
	if err != nil {
		return nil, err
	}
	return &embeddedTTS{rs: rs, url: rs.URL(d), dialect: d}, nil
}

func (e *embeddedTTS) close() { _ = e.rs.Close() }

// rootHandler serves the demo page.
func rootHandler() http.Handler { return web.Handler() }
