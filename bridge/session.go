package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
	"github.com/voicebridge/voicebridge/tts"
)

// Call states of GET /v1/calls/{id}.
const (
	stateNew       = "new"
	stateConnected = "connected"
	stateClosed    = "closed"
)

// Session is one call. It owns its peer connection, audio track, media
// stream, TTS connection and every goroutine it starts (s.wg), and tears all
// of it down once, in reverse order of construction, when its context is
// cancelled: by DELETE, the bot's closeConnection, the peer connection
// failing, closing or staying disconnected, or Shutdown. Pion's callbacks
// only signal (cancel with a cause, or a non-blocking send); the session's
// supervisor goroutine (run) does the work.
type Session struct {
	id      string
	srv     *Server
	log     *slog.Logger
	opts    callOptions // resolved: no empty field but voice settings
	created time.Time

	ctx    context.Context // the call's lifetime; Cause says why it ended
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // every goroutine of the call but the supervisor
	done   chan struct{}  // closed when the call is torn down and forgotten

	pc          *webrtc.PeerConnection
	track       *audioTrack
	transceiver *webrtc.RTPTransceiver
	sender      *webrtc.RTPSender
	stream      *media.Stream
	tts         *tts.Client
	rx          callerRx // the caller's audio and keypad (caller.go)
	// whip is the WHIP resource of a call the bridge published into an
	// SFU (nil otherwise): set during the SDP exchange, before the call is
	// registered, and deleted at the endpoint by teardown.
	whip *whipResource
	// sip is the SIP side of a call that came in over SIP (sipcall.go), nil
	// otherwise: such a call has no peer connection.
	sip *sipLeg

	// Latency probes (unix nanoseconds; 0: not measuring): when a trigger
	// was sent to an idle TTS, and when its first audio arrived.
	ttfbStart  atomic.Int64
	firstAudio atomic.Int64

	textMu sync.Mutex
	// The following fields are guarded by textMu, which also serializes
	// SendText so text is spoken in the order it was accepted.
	pendingText int  // bytes sent since the TTS last ended a generation (or since clear)
	untriggered int  // bytes sent since the last flush/trigger
	generating  bool // a flush/trigger was sent and its generation has not ended

	play  playState // the TTS → stream handoff (session_media.go)
	marks markState // the bot's marks (marks.go)

	notify        chan struct{} // cap 1: the peer connection's state changed
	everConnected atomic.Bool
	connected     atomic.Bool // the pacer runs: state "connected"
	pacerDone     chan struct{}
	tornDown      atomic.Bool

	mu sync.Mutex
	// The following fields are guarded by mu.
	closed  bool // teardown started: no new goroutines or bot sockets
	bots    map[*botConn]struct{}
	endedAt time.Time
	reason  string
}

// signaling is a call's role in the SDP exchange. An answered call
// (answerer: the WHEP-shaped POST /v1/calls with an offer) and an offered
// call (whipPublisher: the bridge publishes into an SFU over WHIP) share the
// whole transport built by newSession; only negotiate differs.
type signaling interface {
	// check validates the role's input before a slot is reserved.
	check() error
	// negotiate runs the SDP exchange on c's transport, dialing the TTS
	// meanwhile, and returns what the client gets back (the answerer's SDP;
	// "" for WHIP). ctx is the request's. On error the caller tears c down;
	// whatever negotiate recorded in c (a WHIP resource) is released then.
	negotiate(ctx context.Context, c *Session) (string, error)
	// rejectReason labels a failed negotiation in callsRejected.
	rejectReason(err error) string
	// direction is the bridge's audio transceiver's: sendrecv when the
	// peer sends audio too (a two-way call, caller.go), else sendonly.
	direction() webrtc.RTPTransceiverDirection
}

// createCall validates the options and the role's input, reserves a slot,
// builds the call's transport, runs the SDP exchange and registers the
// call. It returns the call and what the role hands back to the client (the
// SDP answer with ICE gathering complete, or "" for WHIP). ctx is the
// request's: it bounds the TTS dial, the gathering and the WHIP exchange,
// not the call.
func (s *Server) createCall(ctx context.Context, o callOptions, role signaling) (*Session, string, error) {
	o, err := s.resolveOptions(o)
	if err != nil {
		return nil, "", err
	}
	if err := role.check(); err != nil {
		return nil, "", err
	}
	if o, err = s.chooseCodec(o, role); err != nil { // codecs.go
		return nil, "", err
	}
	if err := s.reserve(); err != nil {
		return nil, "", err
	}
	c, err := s.newSession(o, role.direction())
	var local string
	if err == nil {
		if local, err = role.negotiate(ctx, c); err != nil {
			c.cancel(err)
			c.teardown()
		}
	}
	if err != nil {
		s.unreserve()
		s.metrics.callsRejected.WithLabelValues(role.rejectReason(err)).Inc()
		return nil, "", err
	}
	if err := s.register(c); err != nil {
		c.cancel(err)
		c.teardown()
		s.unreserve()
		return nil, "", err
	}
	c.log.Info("call created", "voice_id", o.VoiceID, "model_id", o.ModelID, "output_format", o.OutputFormat)
	return c, local, nil
}

// rejectReason is the callsRejected label of a call that failed to build:
// "tts" for a TTS refusal, "bad_request" for the client's fault, else
// "error".
func rejectReason(err error) string {
	switch status, _, _ := classify(err); {
	case status == http.StatusBadGateway:
		return "tts"
	case status < 500:
		return "bad_request"
	}
	return "error"
}

// newCallState is a call's state before any transport: its id, options,
// context and channels. Both transports (a Pion peer connection here, plain
// RTP for SIP calls in sipcall.go) start from it.
func (s *Server) newCallState(id string, o callOptions) *Session {
	c := &Session{
		id:        id,
		srv:       s,
		log:       s.log.With("call", id),
		opts:      o,
		created:   time.Now(),
		done:      make(chan struct{}),
		notify:    make(chan struct{}, 1),
		pacerDone: make(chan struct{}),
		bots:      make(map[*botConn]struct{}),
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return c
}

// newSession builds a call's transport, everything that does not depend on
// who offers: the peer connection, the sendonly audio track and its
// transceiver, the RTCP read loop and the media stream. The SDP exchange is
// the role's (signaling.negotiate). On error everything built so far is torn
// down.
func (s *Server) newSession(o callOptions, dir webrtc.RTPTransceiverDirection) (_ *Session, err error) {
	c := s.newCallState(newID(), o)
	defer func() {
		if err != nil {
			c.cancel(err)
			c.teardown()
		}
	}()

	api, err := s.pion.newAPI(c.log, o.codec, dir)
	if err != nil {
		return nil, err
	}
	if c.pc, err = api.NewPeerConnection(webrtc.Configuration{ICEServers: s.pion.iceServers}); err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	c.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		// Pion runs this in its own goroutine; only signal.
		if st == webrtc.PeerConnectionStateConnected {
			c.everConnected.Store(true)
		}
		select {
		case c.notify <- struct{}{}:
		default:
		}
	})
	c.track = newAudioTrack(codecCapability(o.codec)) // track.go
	if dir == webrtc.RTPTransceiverDirectionSendrecv {
		c.pc.OnTrack(c.onTrack) // a two-way call: the caller's track is read (caller.go)
	}
	if c.transceiver, err = c.pc.AddTransceiverFromTrack(c.track, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
		return nil, fmt.Errorf("add track: %w", err)
	}
	c.sender = c.transceiver.Sender()
	if dir != webrtc.RTPTransceiverDirectionSendonly {
		// The RTCP read loop of a two-way call: it lets the report
		// interceptors see the client's RTCP, and ends when the peer
		// connection closes. A one-way call drops that RTCP on arrival
		// (sendOnlyBuffers) and needs no reader.
		c.wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.sender.Read(buf); err != nil {
					return
				}
			}
		})
	}
	if err := c.newMedia(media.StreamConfig{Writer: c.track, Codec: o.codec}); err != nil {
		return nil, err
	}
	return c, nil
}

// answerer is the role of a call whose client offers (POST /v1/calls with
// an SDP offer, the WHEP shape): the bridge answers with ICE gathering
// complete.
type answerer struct{ offer string }

func (a answerer) check() error                  { return checkOffer(a.offer) }
func (a answerer) rejectReason(err error) string { return rejectReason(err) }

func (a answerer) direction() webrtc.RTPTransceiverDirection {
	if offerSendsAudio(a.offer) {
		return webrtc.RTPTransceiverDirectionSendrecv
	}
	return webrtc.RTPTransceiverDirectionSendonly
}

func (a answerer) negotiate(ctx context.Context, c *Session) (string, error) {
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: a.offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if c.transceiver.Mid() == "" {
		return "", fmt.Errorf("%w: no audio section of the offer can receive the bridge's track", ErrNoAudio)
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if err := c.setLocalAndDialTTS(ctx, ans); err != nil {
		return "", err
	}
	return c.pc.LocalDescription().SDP, nil
}

// setLocalAndDialTTS sets desc (an answer or a WHIP offer) as the local
// description and dials the TTS while ICE gathers, so the first text is not
// slowed by a handshake and the SDP not by the dial; it returns once
// gathering is complete.
func (c *Session) setLocalAndDialTTS(ctx context.Context, desc webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(desc); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	if err := c.dialTTS(ctx); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gather ICE candidates: %w", context.Cause(ctx))
	}
	return nil
}

// run is the call's supervisor: it turns peer connection states into a
// cause, starts the pacer once connected, and tears the call down when its
// context ends. It runs in the goroutine Server.register starts.
func (c *Session) run() {
	defer c.teardown()
	if c.sip != nil {
		c.sip.supervise(c)
		return
	}
	cfg := c.srv.cfg
	connectTimer := time.NewTimer(cfg.ConnectTimeout)
	defer connectTimer.Stop()
	var discTimer *time.Timer
	var discC <-chan time.Time
	stopDisc := func() {
		if discTimer != nil {
			discTimer.Stop()
			discTimer, discC = nil, nil
		}
	}
	defer stopDisc()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.notify:
			switch st := c.pc.ConnectionState(); st {
			case webrtc.PeerConnectionStateConnected:
				stopDisc()
			case webrtc.PeerConnectionStateDisconnected:
				if discC == nil {
					discTimer = time.NewTimer(cfg.DisconnectedTimeout)
					discC = discTimer.C
				}
				c.log.Info("peer connection disconnected", "timeout", cfg.DisconnectedTimeout)
			case webrtc.PeerConnectionStateFailed:
				c.cancel(ErrPeerFailed)
			case webrtc.PeerConnectionStateClosed:
				c.cancel(ErrPeerClosed)
			}
			if c.everConnected.Load() && !c.connected.Load() {
				connectTimer.Stop()
				c.connected.Store(true)
				c.startPacer()
				c.log.Info("peer connected")
			}
		case <-connectTimer.C:
			if !c.connected.Load() {
				c.cancel(ErrConnectTimeout)
			}
		case <-discC:
			c.cancel(ErrPeerDisconnected)
		}
	}
}

// Close ends the call with cause and waits until it is torn down. Safe to
// call from any goroutine but the call's own, any number of times.
func (c *Session) Close(cause error) {
	c.cancel(cause)
	<-c.done
}

// teardown releases everything, once, in reverse order of construction:
// pacer, TTS client, peer connection (graceful: it waits for Pion's
// goroutines), the WHIP resource at the SFU (a DELETE bounded by
// Config.WHIPTimeout), the call's other goroutines, then the codec. The
// context must already be cancelled.
func (c *Session) teardown() {
	if !c.tornDown.CompareAndSwap(false, true) {
		return
	}
	cause := context.Cause(c.ctx)
	c.mu.Lock()
	c.closed = true
	c.endedAt = time.Now()
	c.reason = reasonOf(cause)
	c.mu.Unlock()

	if c.connected.Load() {
		<-c.pacerDone
	}
	c.closeTTS()
	if c.pc != nil {
		if err := c.pc.GracefulClose(); err != nil {
			c.log.Debug("close peer connection", "err", err)
		}
	}
	c.deleteWHIP()
	c.sip.hangup() // a SIP call: BYE, unless the caller ended it
	c.wg.Wait()
	c.closeMedia()
	c.log.Info("call ended", "reason", c.reason, "frames_sent", c.framesSent(), "duration", time.Since(c.created).Round(time.Millisecond))
}

// reasons are the "reason" of the bot's closed event and the close_reason
// of GET, by cause.
var reasons = []struct {
	err    error
	reason string
}{
	{ErrHangup, "hangup"},
	{ErrBotClosed, "bot_closed"},
	{ErrPeerClosed, "peer_closed"},
	{ErrPeerFailed, "peer_failed"},
	{ErrPeerDisconnected, "peer_disconnected"},
	{ErrConnectTimeout, "connect_timeout"},
	{ErrShutdown, "shutdown"},
	{ErrShuttingDown, "shutdown"},
	{ErrRTPTimeout, "rtp_timeout"},
	{ErrSIPNoACK, "no_ack"},
}

// reasonOf names a cause for clients; an unexpected cause is "error".
func reasonOf(cause error) string {
	for _, r := range reasons {
		if errors.Is(cause, r.err) {
			return r.reason
		}
	}
	return "error"
}

// info is the call's state for GET /v1/calls/{id}.
func (c *Session) info() callInfo {
	c.mu.Lock()
	closed, endedAt, reason, bots := c.closed, c.endedAt, c.reason, len(c.bots)
	c.mu.Unlock()
	state := stateNew
	switch {
	case closed:
		state = stateClosed
	case c.connected.Load():
		state = stateConnected
	}
	st := c.stats()
	return callInfo{
		ID:           c.id,
		State:        state,
		CreatedAt:    c.created.UTC(),
		EndedAt:      endedAt.UTC(),
		CloseReason:  reason,
		FramesSent:   st.framesSent,
		SpeechFrames: st.speechFrames,
		LateFrames:   st.lateFrames,
		VoiceID:      c.opts.VoiceID,
		ModelID:      c.opts.ModelID,
		OutputFormat: c.opts.OutputFormat,
		Codec:        c.opts.codec.String(),
		Dialect:      string(c.srv.ttsDialect),
		BotSockets:   bots,
		WHIP:         c.whip.info(),
		SIP:          c.sip.info(),
	}
}
