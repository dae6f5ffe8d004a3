package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
	"github.com/voicebridge/voicebridge/bridge/sip"
	"github.com/voicebridge/voicebridge/media"
)

// Causes of a SIP call's end that WebRTC calls do not have.
var (
	// ErrRTPTimeout: the SIP caller sent no RTP for -rtp-timeout.
	ErrRTPTimeout = errors.New("no RTP from the SIP caller")
	// ErrSIPNoACK: the SIP caller never acknowledged the 200 OK.
	ErrSIPNoACK = errors.New("the SIP caller never acknowledged the answer")
)

// sipInfo is the "sip" object of GET /v1/calls/{id}.
type sipInfo struct {
	CallID string `json:"call_id"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// sipLeg is the SIP side of a call that came in over SIP: its dialog and
// plain RTP transport (package sip owns both), and the queue its caller's
// packets take to the call's receive loop (caller_rx.go). Such a Session
// has no peer connection.
type sipLeg struct {
	call      *sip.Call
	codec     string        // "pcmu", "pcma" or "opus"
	started   chan struct{} // closed by the caller's ACK
	startOnce sync.Once
	rx        *rtpQueue
}

// hangup ends the dialog with BYE (nothing if the caller ended it). A nil
// leg (a WebRTC call) does nothing.
func (l *sipLeg) hangup() {
	if l != nil {
		l.call.Hangup()
	}
}

func (l *sipLeg) info() *sipInfo {
	if l == nil {
		return nil
	}
	return &sipInfo{CallID: l.call.CallID, From: l.call.From, To: l.call.To}
}

// supervise is a SIP call's supervisor (run): the pacer starts at the ACK;
// the call ends when its context does (the SIP side reports its end through
// sipHandler.Ended).
func (l *sipLeg) supervise(c *Session) {
	select {
	case <-c.ctx.Done():
		return
	case <-l.started:
	}
	c.connected.Store(true)
	c.startPacer()
	c.log.Info("sip call up", "codec", l.codec)
	<-c.ctx.Done()
}

// startSIP starts the SIP front door when Config.SIPListen is set.
func (s *Server) startSIP() error {
	if s.cfg.SIPListen == "" {
		return nil
	}
	listen, err := sip.ParseListen(s.cfg.SIPListen)
	if err != nil {
		return err
	}
	if s.botDialer, err = sip.NewBotDialer(s.cfg.BotURL); err != nil {
		return err
	}
	cfg := sip.Config{Listen: listen, RTPTimeout: s.cfg.RTPTimeout, Logger: s.log}
	if s.cfg.RTPPortMin != 0 {
		cfg.Ports = plainrtp.NewPortPool(s.cfg.RTPPortMin, s.cfg.RTPPortMax)
	}
	s.sipSrv, err = sip.New(cfg, sipAcceptor{s})
	if err != nil {
		return err
	}
	s.log.Info("sip listening", "addrs", fmt.Sprint(s.sipSrv.Addrs()), "bot", s.botDialer.String())
	return nil
}

// SIPAddrs are the SIP listen addresses (ports resolved); nil without SIP.
func (s *Server) SIPAddrs() []sip.ListenAddr {
	if s.sipSrv == nil {
		return nil
	}
	return s.sipSrv.Addrs()
}

// sipAcceptor takes SIP calls for the Server (sip.Acceptor).
type sipAcceptor struct{ s *Server }

// Accept makes a SIP call a bridge call: a slot of -max-calls, the media
// stream on the call's RTP transport (G.711 or Opus as negotiated), the TTS
// connection and the bot's WebSocket (-bot-url), all before the 200 OK.
func (a sipAcceptor) Accept(ctx context.Context, sc *sip.Call) (sip.CallHandler, error) {
	s := a.s
	m := sc.Media()
	codec, err := media.ParseCodec(m.Codec.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", sip.ErrUnavailable, err)
	}
	o := callOptions{codec: codec}
	if codec.IsG711() && s.cfg.TTSFormat == DefaultTTSFormat {
		o.OutputFormat = "pcm_8000" // the phone line's rate: no resampling at all
	}
	if o, err = s.resolveOptions(o); err != nil {
		return nil, fmt.Errorf("%w: %v", sip.ErrUnavailable, err)
	}
	if err := s.reserve(); err != nil {
		return nil, fmt.Errorf("%w: %v", sip.ErrBusy, err)
	}
	c := s.newCallState(newID(), o)
	c.sip = &sipLeg{call: sc, codec: m.Codec.Name, started: make(chan struct{})}
	fail := func(err error, label string) (sip.CallHandler, error) {
		c.cancel(err)
		c.teardown()
		s.unreserve()
		s.metrics.callsRejected.WithLabelValues(label).Inc()
		return nil, err
	}
	w := ptWriter{tr: sc.Transport, audioFrom: codec.PayloadType(), audioTo: m.Codec.PayloadType, dtmfTo: streamDTMFPT}
	if m.HasDTMF {
		w.dtmfTo = m.DTMFPayloadType
	}
	if err := c.newMedia(media.StreamConfig{Writer: w, Codec: codec, DTMFPayloadType: streamDTMFPT}); err != nil {
		return fail(err, "error")
	}
	if c.sip.rx, err = c.startSIPRx(codec, m); err != nil {
		return fail(err, "error")
	}
	if err := c.dialTTS(ctx); err != nil {
		return fail(fmt.Errorf("%w: %v", sip.ErrUnavailable, err), "tts")
	}
	bc := sip.BotCall{CallID: c.id, From: sc.From, To: sc.To}
	conn, err := s.botDialer.Dial(ctx, bc)
	if err != nil {
		return fail(err, "bot_unavailable")
	}
	rate := 16000
	if u, err := url.Parse(s.botDialer.URL(bc)); err == nil {
		if r, err := parseListen(u.Query().Get("listen"), u.Query().Has("listen")); err == nil {
			rate = r // 0: the bot listens to nothing
		}
	}
	if err := s.register(c); err != nil {
		_ = conn.Close()
		c.cancel(err)
		c.teardown()
		s.unreserve()
		return nil, fmt.Errorf("%w: %v", sip.ErrBusy, err)
	}
	if !c.addBot(newBotConn(conn, rate)) {
		_ = conn.Close() // the call already ended (a BYE raced the answer): Ended follows
	}
	c.log.Info("sip call taken", "sip_call_id", sc.CallID, "codec", m.Codec.Name, "output_format", o.OutputFormat)
	return sipHandler{c}, nil
}

// newBotConn wraps a bot's socket (one the bridge accepted on /ws or dialed
// for a SIP call); rate is the caller audio it listens to (0: none).
func newBotConn(conn *websocket.Conn, rate int) *botConn {
	b := &botConn{
		conn:       conn,
		out:        make(chan []byte, botQueue),
		kick:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	if rate != 0 {
		b.audio = newAudioSink(rate)
		if tc, ok := conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(botAudioSendBuffer)
		}
	}
	return b
}

// streamDTMFPT is the payload type the stream puts on telephone-events;
// ptWriter maps it to the offer's. It differs from every codec's stream
// payload type (0, 8, 111).
const streamDTMFPT = 101

// ptWriter puts the offer's payload types on the stream's packets: Opus's
// is dynamic on SIP, and so is telephone-event's.
type ptWriter struct {
	tr                         *plainrtp.Transport
	audioFrom, audioTo, dtmfTo uint8
}

func (w ptWriter) WriteRTP(p *rtp.Packet) error {
	from := p.PayloadType
	switch from {
	case w.audioFrom:
		p.PayloadType = w.audioTo
	case streamDTMFPT:
		p.PayloadType = w.dtmfTo
	}
	err := w.tr.WriteRTP(p)
	p.PayloadType = from
	return err
}

// sipHandler is the bridge's side of an answered SIP call (sip.CallHandler).
type sipHandler struct{ c *Session }

// Started: the caller's ACK; the supervisor starts the pacer.
func (h sipHandler) Started() {
	l := h.c.sip
	l.startOnce.Do(func() { close(l.started) })
}

// HandleRTP queues the caller's audio and key presses for the call's
// receive loop (transport goroutine; never blocks).
func (h sipHandler) HandleRTP(p *rtp.Packet) { h.c.sip.rx.push(p, time.Now()) }

// Ended ends the call with the SIP side's cause and waits until it is torn
// down (the transport closes after Ended returns, so the pacer stops first).
func (h sipHandler) Ended(cause error) {
	h.c.Close(sipCause(cause))
}

// sipCause maps the SIP side's end to the call's cause (the bots' "closed"
// reason).
func sipCause(cause error) error {
	switch {
	case errors.Is(cause, sip.ErrHangup), errors.Is(cause, sip.ErrLocalHangup):
		return ErrHangup
	case errors.Is(cause, plainrtp.ErrRTPTimeout):
		return ErrRTPTimeout
	case errors.Is(cause, sip.ErrNoACK):
		return ErrSIPNoACK
	case errors.Is(cause, sip.ErrShutdown):
		return ErrShutdown
	}
	return cause
}
