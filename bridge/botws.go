package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/voicebridge/voicebridge/tts"
)

// Bot WebSocket timing and limits.
const (
	botWriteWait  = 5 * time.Second  // deadline of the writes that end a socket
	botPongWait   = 60 * time.Second // a bot that answers no ping this long is dropped
	botPingPeriod = 25 * time.Second // must be below botPongWait
	botCloseGrace = time.Second      // wait for the bot's close frame after ours
	botQueue      = 64               // events queued per socket before it is dropped as too slow
	// botReadLimit caps one message: the 16 KiB text limit of the HTTP API
	// plus room for the JSON around it. Gorilla closes a socket that sends
	// more (1009).
	botReadLimit = maxTextBody + 1024
)

// Caller audio on bot sockets (?listen=).
const (
	// botStallWait is the deadline of every write while the call runs. It
	// is a liveness limit, not a speed limit: a listening bot that falls
	// behind loses its oldest audio (audioSink), never its socket, so only
	// a bot that drains nothing for this long is dropped, like one that
	// answers no ping.
	botStallWait = botPongWait
	// botAudioSendBuffer is the kernel send buffer of a listening socket
	// (Linux doubles it): it bounds the audio that waits in the kernel, so
	// a slow bot's backlog stays in the ring, which drops the oldest, and
	// the audio it does read is recent.
	botAudioSendBuffer = 32 << 10
)

// Events the bridge sends on bot sockets. The fixed ones are marshaled once.
var (
	msgSpeaking    = []byte(`{"type":"speaking"}`)
	msgDone        = []byte(`{"type":"done"}`)
	msgInitialized = []byte(`{"type":"connectionInitialized"}`)
)

// botEvent is an event with fields: error and closed.
type botEvent struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Text    string `json:"text,omitempty"` // tts_interrupted: the cut generation's text
}

// botConn is one bot WebSocket on a call: one reader and one writer
// goroutine (gorilla allows one of each), both owned by the call.
type botConn struct {
	conn       *websocket.Conn
	out        chan []byte   // events for the writer, in order
	kick       chan struct{} // closed when out overflowed: the bot is too slow
	kickOnce   sync.Once
	readerDone chan struct{}
	audio      *audioSink // the caller audio it listens to; nil without ?listen
}

// enqueue queues msg for the writer without blocking. A bot that lets
// botQueue events pile up is dropped (its socket closed with 1008), never
// silently skipped.
func (b *botConn) enqueue(msg []byte) {
	select {
	case b.out <- msg:
	default:
		b.kickOnce.Do(func() { close(b.kick) })
	}
}

// handleWS is GET /v1/calls/{id}/ws. Several bot sockets may share a call:
// each receives every event, and text from any of them is spoken in the
// order it arrives.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	rate, err := parseListen(r.URL.Query().Get("listen"), r.URL.Query().Has("listen"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if !websocketUpgrade(r) {
		writeError(w, r, s.log, fmt.Errorf("%w: this endpoint is a WebSocket", ErrNotWebSocket))
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	b := newBotConn(conn, rate)
	if !c.addBot(b) {
		msg, _ := json.Marshal(botEvent{Type: "closed", Reason: c.info().CloseReason})
		_ = conn.SetWriteDeadline(time.Now().Add(botWriteWait))
		_ = conn.WriteMessage(websocket.TextMessage, msg)
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "call ended"))
		_ = conn.Close()
	}
}

// upgradeError answers a WebSocket handshake that gorilla refuses in the
// contract's JSON shape (gorilla's own answer is plain text).
func (s *Server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	err := fmt.Errorf("%w: %v", ErrNotWebSocket, reason)
	switch status {
	case http.StatusForbidden:
		err = ErrOriginNotAllowed
	case http.StatusInternalServerError:
		err = reason // unknown to the table: 500, detail only in the log
	}
	w.Header().Set("Sec-WebSocket-Version", "13")
	writeError(w, r, s.log, err)
}

// addBot registers b and starts its two goroutines, unless the call is
// ending.
func (c *Session) addBot(b *botConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.bots[b] = struct{}{}
	if b.audio != nil {
		c.addSink(b.audio)
	}
	c.wg.Go(func() { c.botReader(b) })
	c.wg.Go(func() { c.botWriter(b) })
	c.log.Info("bot connected", "bots", len(c.bots))
	return true
}

func (c *Session) removeBot(b *botConn) {
	if b.audio != nil {
		c.removeSink(b.audio)
	}
	c.mu.Lock()
	delete(c.bots, b)
	c.mu.Unlock()
}

// broadcast queues msg on every bot socket, in call order.
func (c *Session) broadcast(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := range c.bots {
		b.enqueue(msg)
	}
}

// broadcastError sends an error event to every bot socket.
func (c *Session) broadcastError(err error) {
	_, code, msg := classify(err)
	b, _ := json.Marshal(botEvent{Type: "error", Code: code, Message: msg})
	c.broadcast(b)
}

// broadcastEvent sends an event with fields to every bot socket.
func (c *Session) broadcastEvent(e botEvent) {
	b, _ := json.Marshal(e)
	c.broadcast(b)
}

// sendError sends an error event to one bot socket.
func (b *botConn) sendError(err error) {
	_, code, msg := classify(err)
	m, _ := json.Marshal(botEvent{Type: "error", Code: code, Message: msg})
	b.enqueue(m)
}

// botWriter is the only goroutine that writes data messages to b: events
// (text) and, for a listening bot, caller audio (binary), events first.
// When the call ends it sends what is queued, then
// {"type":"closed","reason":...}, then a close frame.
func (c *Session) botWriter(b *botConn) {
	defer c.removeBot(b)
	defer b.conn.Close()
	ping := time.NewTicker(botPingPeriod)
	defer ping.Stop()
	// While the call runs a write may wait botStallWait for a slow bot;
	// once it ends, a write blocked then is cut short to botWriteWait (the
	// net.Conn's deadline may be set from another goroutine; gorilla's own
	// state is not touched).
	fired := make(chan struct{})
	stop := context.AfterFunc(c.ctx, func() {
		defer close(fired)
		_ = b.conn.NetConn().SetWriteDeadline(time.Now().Add(botWriteWait))
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	write := func(typ int, msg []byte) error {
		wait := botStallWait
		if c.ctx.Err() != nil {
			wait = botWriteWait
		}
		_ = b.conn.SetWriteDeadline(time.Now().Add(wait))
		return b.conn.WriteMessage(typ, msg)
	}
	var audioReady <-chan struct{}
	var frame []byte
	if b.audio != nil {
		audioReady = b.audio.ready
		frame = make([]byte, b.audio.frameBytes)
	}
	m := c.srv.metrics.caller
	for {
		select {
		case msg := <-b.out:
			if write(websocket.TextMessage, msg) != nil {
				return
			}
		case <-audioReady:
			for {
				select { // events go before audio
				case msg := <-b.out:
					if write(websocket.TextMessage, msg) != nil {
						return
					}
				default:
				}
				arrival, ok := b.audio.pop(frame)
				if !ok || c.ctx.Err() != nil {
					break
				}
				if write(websocket.BinaryMessage, frame) != nil {
					return
				}
				m.sent.Inc()
				if arrival != 0 {
					m.latency.Observe(time.Since(time.Unix(0, arrival)).Seconds())
				}
			}
		case <-ping.C:
			if write(websocket.PingMessage, nil) != nil {
				return
			}
		case <-b.kick:
			c.log.Warn("bot socket dropped: it does not read its events")
			_ = write(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too slow"))
			return
		case <-b.readerDone:
			if c.ctx.Err() == nil {
				return // the bot went away; the call goes on
			}
			c.botClosing(b, write)
			return
		case <-c.ctx.Done():
			c.botClosing(b, write)
			return
		}
	}
}

// botClosing sends the queued events, the closed event and a close frame,
// then waits briefly for the bot's close frame.
func (c *Session) botClosing(b *botConn, write func(int, []byte) error) {
	for {
		select {
		case msg := <-b.out:
			if write(websocket.TextMessage, msg) != nil {
				return
			}
			continue
		default:
		}
		break
	}
	reason := reasonOf(context.Cause(c.ctx))
	msg, _ := json.Marshal(botEvent{Type: "closed", Reason: reason})
	if write(websocket.TextMessage, msg) != nil {
		return
	}
	if write(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)) != nil {
		return
	}
	t := time.NewTimer(botCloseGrace)
	defer t.Stop()
	select {
	case <-b.readerDone:
	case <-t.C:
	}
}

// botReader is the only goroutine that reads b. It handles the TTS
// protocol's own messages (see handleBotMessage) until the socket fails or
// closes.
func (c *Session) botReader(b *botConn) {
	defer close(b.readerDone)
	b.conn.SetReadLimit(botReadLimit)
	_ = b.conn.SetReadDeadline(time.Now().Add(botPongWait))
	b.conn.SetPongHandler(func(string) error { return b.conn.SetReadDeadline(time.Now().Add(botPongWait)) })
	for {
		typ, msg, err := b.conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) &&
				c.ctx.Err() == nil {
				c.log.Debug("bot socket read", "err", err)
			}
			return
		}
		_ = b.conn.SetReadDeadline(time.Now().Add(botPongWait))
		if typ != websocket.TextMessage {
			b.sendError(fmt.Errorf("%w: binary messages are not part of the protocol (caller audio only flows to the bot)", ErrBadJSON))
			continue
		}
		c.handleBotMessage(b, msg)
	}
}

// botMessage is any message a bot may send: the TTS protocol's text, clear,
// closeConnection and initConnection (also faseeh's legacy form without
// "type"). Unknown fields are ignored, as the bot speaks to the bridge as it
// would to a TTS service.
type botMessage struct {
	Type                 string             `json:"type"`
	Text                 *string            `json:"text"`
	Flush                bool               `json:"flush"`
	TryTriggerGeneration bool               `json:"try_trigger_generation"`
	VoiceID              string             `json:"voice_id"`
	ModelID              string             `json:"model_id"`
	VoiceSettings        *tts.VoiceSettings `json:"voice_settings"`
	Stability            *float64           `json:"stability"` // faseeh legacy init
	OutputFormat         string             `json:"output_format"`
	Name                 string             `json:"name"`        // mark
	Digits               string             `json:"digits"`      // dtmf
	DurationMS           *int               `json:"duration_ms"` // dtmf
	GapMS                *int               `json:"gap_ms"`      // dtmf
}

// handleBotMessage acts on one bot message. Failures become an error event on
// this socket; the socket stays open.
func (c *Session) handleBotMessage(b *botConn, raw []byte) {
	var m botMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		b.sendError(fmt.Errorf("%w: %v", ErrBadJSON, err))
		return
	}
	switch {
	case m.Type == "text":
		if m.Text == nil {
			b.sendError(fmt.Errorf("%w: text: required", ErrInvalidField))
			return
		}
		if err := c.speak(c.ctx, *m.Text, m.Flush, m.TryTriggerGeneration); err != nil && c.ctx.Err() == nil {
			b.sendError(err)
		}
	case m.Type == "clear":
		if err := c.clear(c.ctx); err != nil && c.ctx.Err() == nil {
			b.sendError(err)
		}
	case m.Type == "mark":
		if err := c.mark(m.Name); err != nil && c.ctx.Err() == nil {
			b.sendError(err)
		}
	case m.Type == "dtmf":
		if err := c.sendDTMF(m.Digits, m.DurationMS, m.GapMS); err != nil && c.ctx.Err() == nil {
			b.sendError(err)
		}
	case m.Type == "closeConnection":
		c.cancel(ErrBotClosed) // the writer sends "closed" and closes the socket
	case m.Type == "initConnection" || (m.Type == "" && m.VoiceID != ""):
		// The call's TTS connection was initialized when the call was
		// created, with the call's voice. A bot's initConnection is
		// acknowledged so a bot written for Faseeh/Munsit works unchanged;
		// its settings are validated but do not change the call's voice,
		// and x_api_key is ignored (the bridge token authenticates).
		vs := tts.VoiceSettings{Stability: m.Stability}
		if m.VoiceSettings != nil {
			vs = *m.VoiceSettings
		}
		if err := vs.Validate(); err != nil {
			b.sendError(err)
			return
		}
		if m.OutputFormat != "" {
			if _, ok := validFormats[m.OutputFormat]; !ok {
				b.sendError(fmt.Errorf("%w: output_format: must be pcm_8000, pcm_16000, pcm_22050 or pcm_24000", ErrInvalidField))
				return
			}
		}
		b.enqueue(msgInitialized)
	default:
		b.sendError(fmt.Errorf("%w: unknown message type %q (want text, clear, mark, dtmf, closeConnection or initConnection)", ErrInvalidField, m.Type))
	}
}
