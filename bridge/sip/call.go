package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
)

// Call is one SIP call from INVITE to its end. Its fields are read-only.
type Call struct {
	// CallID is the SIP Call-ID; From and To are the URIs of the INVITE's
	// From and To headers (the contract's "sip" object).
	CallID, From, To string
	// Transport is the call's RTP: the pacer writes to it (WriteRTP) from
	// CallHandler.Started on.
	Transport *plainrtp.Transport

	srv       *Server
	log       *slog.Logger
	dialogID  string
	sigIP     netip.Addr // the INVITE's source address
	dtx       *sipgo.DialogServerSession
	sessionID uint64

	mu      sync.Mutex
	media   Media  // guarded by mu: the current negotiation
	version uint64 // guarded by mu: o= version of our last answer

	// The re-INVITE whose 200 OK waits for its ACK (UDP retransmission).
	reackMu   sync.Mutex
	reackCSeq uint32        // guarded by reackMu
	reackCh   chan struct{} // guarded by reackMu; closed by the ACK

	byeIn      atomic.Bool // the caller sent BYE (vs. the INVITE transaction timing out)
	hangup     chan struct{}
	hangupOnce sync.Once
	done       chan struct{}
	err        atomic.Pointer[error]
}

// Media is the call's current negotiation (a re-INVITE may change the
// remote address and direction, never the codec).
func (c *Call) Media() Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// Hangup ends the call: BYE once answered, 503 while still pending. It
// returns at once; Done is closed when the call is over.
func (c *Call) Hangup() { c.hangupOnce.Do(func() { close(c.hangup) }) }

// Done is closed when the call is over (after CallHandler.Ended).
func (c *Call) Done() <-chan struct{} { return c.done }

// Err is why the call ended (nil before Done).
func (c *Call) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// applyMedia points the transport at the negotiated remote and applies its
// direction: on hold the bridge stops sending; a caller that says it sends
// nothing pauses the inactivity timer.
func (c *Call) applyMedia(m Media) {
	if a := m.RemoteRTP.Addr(); a.IsValid() && !a.IsUnspecified() {
		if c.Transport.Remote() != m.RemoteRTP {
			c.Transport.SetRemote(m.RemoteRTP, m.RemoteRTCP)
		}
	}
	c.Transport.AllowSources(m.RemoteRTP.Addr(), c.sigIP)
	c.Transport.SetSending(!m.Hold())
	c.Transport.ExpectRTP(m.Offered.Sends())
}

// answer builds our SDP answer for m with the next o= version.
func (c *Call) answer(m Media) ([]byte, error) {
	c.mu.Lock()
	c.version++
	v := c.version
	c.mu.Unlock()
	return Answer(m, c.srv.cfg.MediaIP, c.Transport.LocalPort(), c.sessionID, v)
}

// runCall owns a new call from its INVITE to its end, on the INVITE's
// goroutine (the transaction layer gives every request its own).
func (s *Server) runCall(req *siplib.Request, tx siplib.ServerTransaction) {
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	log := s.log.With("sip_call_id", callID)
	if !isSDP(req) {
		// No offer (a "late offer" INVITE) or another body: we only answer.
		s.respond(req, tx, siplib.StatusNotAcceptableHere, "Not Acceptable Here",
			siplib.NewHeader("Warning", `399 voicebridge "an SDP offer is required"`))
		return
	}
	media, err := Negotiate(req.Body(), s.cfg.Codec)
	if err != nil {
		code, reason := statusOf(err)
		log.Info("sip: INVITE rejected", "status", code, "error", err)
		s.respond(req, tx, code, reason, siplib.NewHeader("Warning", `399 voicebridge "`+sanitize(err.Error())+`"`))
		return
	}
	dua := s.dialogs[transportOf(req)]
	if dua == nil {
		s.respond(req, tx, siplib.StatusBadRequest, "Bad Request")
		return
	}
	dtx, err := dua.ReadInvite(req, tx)
	if err != nil {
		log.Info("sip: INVITE rejected", "status", 400, "error", err)
		s.respond(req, tx, siplib.StatusBadRequest, "Bad Request")
		return
	}
	_ = dtx.Respond(siplib.StatusTrying, "Trying", nil)

	tr, err := plainrtp.Listen(plainrtp.Config{
		Pool:           s.cfg.Ports,
		LocalIP:        s.bindIP,
		ClockRate:      media.Codec.ClockRate,
		Timeout:        s.cfg.RTPTimeout,
		ReportInterval: s.cfg.RTCPInterval,
		Logger:         log,
	})
	if err != nil {
		log.Warn("sip: no RTP port", "error", err)
		reject(tx, dtx, siplib.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer tr.Close()
	c := &Call{
		CallID:    callID,
		Transport: tr,
		srv:       s,
		log:       log,
		dialogID:  dtx.ID,
		dtx:       dtx,
		sessionID: uint64(time.Now().Unix()) + s.nextID.Add(1),
		media:     media,
		hangup:    make(chan struct{}),
		done:      make(chan struct{}),
	}
	if h := req.From(); h != nil {
		c.From = h.Address.String()
	}
	if h := req.To(); h != nil {
		c.To = h.Address.String()
	}
	// RTP may come from the SDP address or from where the signaling came
	// from (the caller's NAT), nobody else.
	sigIP := netip.Addr{}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		sigIP = ap.Addr()
	}
	c.sigIP = sigIP
	c.applyMedia(media)
	s.add(c)
	defer s.remove(c)
	defer close(c.done)
	end := func(cause error) { c.err.Store(&cause) }

	// Ask the bridge, bounded by the answer timeout, CANCEL, Hangup and
	// Shutdown; the ctx's cause says which.
	base, cancelBase := context.WithCancelCause(s.ctx) // Shutdown: ErrShutdown
	actx, cancelTimeout := context.WithTimeoutCause(base, s.cfg.AnswerTimeout, ErrUnavailable)
	stopCancel := context.AfterFunc(dtx.Context(), func() { cancelBase(ErrCanceled) })
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-c.hangup:
			cancelBase(ErrLocalHangup)
		case <-actx.Done():
		}
	}()
	h, err := s.acc.Accept(actx, c)
	stopCancel()
	cause := context.Cause(actx)
	cancelTimeout()
	cancelBase(nil)
	watch.Wait()
	if err != nil {
		if errors.Is(context.Cause(dtx.Context()), siplib.ErrTransactionCanceled) {
			log.Info("sip: call canceled before the answer")
			end(ErrCanceled)
			return // the transaction layer answered 487
		}
		if cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		code, reason := statusOf(err)
		log.Info("sip: call not taken", "status", code, "error", err)
		reject(tx, dtx, code, reason)
		end(err)
		return
	}
	cause = s.answered(c, h, tx)
	end(cause)
	h.Ended(cause)
}

// answered runs an accepted call: 200 OK, ACK, media, until its end. It
// returns the cause; the BYE (if one is due) has been sent.
func (s *Server) answered(c *Call, h CallHandler, tx siplib.ServerTransaction) error {
	body, err := c.answer(c.Media())
	if err != nil {
		reject(tx, c.dtx, siplib.StatusInternalServerError, "Server Internal Error")
		return err
	}
	c.Transport.Start(h.HandleRTP)
	switch err := s.sendOK(c, tx, body); {
	case err == nil:
	case errors.Is(err, ErrNoACK), errors.Is(err, ErrLocalHangup), errors.Is(err, ErrShutdown):
		c.log.Info("sip: ending the call before its ACK, sending BYE", "cause", err.Error())
		s.bye(c)
		return err
	default:
		return err
	}
	c.log.Info("sip: call up", "codec", c.Media().Codec.Name, "from", c.From, "to", c.To,
		"rtp_local", c.Transport.LocalPort(), "rtp_remote", c.Transport.Remote().String())
	h.Started()

	var cause error
	select {
	case <-c.dtx.Context().Done():
		cause = ErrHangup
	case <-c.Transport.Done():
		cause = c.Transport.Err()
		s.bye(c)
	case <-c.hangup:
		cause = ErrLocalHangup
		s.bye(c)
	case <-s.ctx.Done():
		cause = ErrShutdown
		s.bye(c)
	}
	c.log.Info("sip: call ended", "cause", cause.Error())
	return cause
}

// sendOK sends the 200 OK with our answer and retransmits it (T1
// doubling up to T2, RFC 3261 §13.3.1.4) until the ACK, for at most
// ACKTimeout. It returns nil on the ACK, ErrNoACK, ErrHangup (BYE before
// the ACK), ErrCanceled, ErrLocalHangup or ErrShutdown. sipgo's RespondSDP does the same
// but only gives up after Timer L and cannot be shortened.
func (s *Server) sendOK(c *Call, tx siplib.ServerTransaction, body []byte) error {
	res := siplib.NewSDPResponseFromRequest(c.dtx.InviteRequest, body)
	res.AppendHeader(siplib.HeaderClone(&s.dialogs[transportOf(c.dtx.InviteRequest)].ContactHDR))
	c.dtx.InviteResponse = res  // what Bye builds on
	states := c.dtx.StateRead() // before the 200: the ACK may beat our select
	if err := tx.Respond(res); err != nil {
		if errors.Is(context.Cause(c.dtx.Context()), siplib.ErrTransactionCanceled) {
			return ErrCanceled
		}
		return err
	}
	deadline := time.NewTimer(s.cfg.ACKTimeout)
	defer deadline.Stop()
	interval := siplib.T1
	retrans := time.NewTimer(interval)
	defer retrans.Stop()
	for {
		select {
		case st := <-states:
			switch st {
			case siplib.DialogStateConfirmed:
				return nil
			case siplib.DialogStateEnded:
				if errors.Is(context.Cause(c.dtx.Context()), siplib.ErrTransactionCanceled) {
					return ErrCanceled
				}
				if c.byeIn.Load() {
					return ErrHangup
				}
				return ErrNoACK
			}
		case <-c.dtx.Context().Done():
			if c.byeIn.Load() {
				return ErrHangup
			}
			// sipgo ends a dialog whose INVITE transaction terminated before
			// the ACK (Timer L, a closed TCP connection): no ACK came.
			return ErrNoACK
		case <-retrans.C:
			_ = tx.Respond(res) // fails once the transaction is gone: the deadline ends it
			interval = min(2*interval, siplib.T2)
			retrans.Reset(interval)
		case <-deadline.C:
			return ErrNoACK
		case <-c.hangup:
			return ErrLocalHangup
		case <-s.ctx.Done():
			return ErrShutdown
		}
	}
}

// bye sends BYE in the dialog, bounded by DefaultByeTimeout. (sipgo's
// DialogServerSession.Bye waits for the INVITE transaction to end before
// an ACK, and terminating it early marks the dialog ended, after which Bye
// sends nothing; so the request is built here.)
func (s *Server) bye(c *Call) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultByeTimeout)
	defer cancel()
	inv := c.dtx.InviteRequest
	req := siplib.NewRequest(siplib.BYE, inv.Contact().Address)
	req.SetTransport(inv.Transport())
	res, err := c.dtx.Do(ctx, req)
	switch {
	case err != nil:
		c.log.Info("sip: BYE not answered", "error", err)
	case res.StatusCode != siplib.StatusOK:
		c.log.Info("sip: BYE refused", "status", res.StatusCode)
	}
}

// onReinvite answers an INVITE inside a dialog: hold/unhold and a moved
// remote address. The codec stays; an offer without it gets 488 and the
// session is unchanged (RFC 3264 §8).
func (s *Server) onReinvite(req *siplib.Request, tx siplib.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(req, tx, siplib.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dtx.ReadRequest(req, tx); err != nil {
		s.respond(req, tx, siplib.StatusInternalServerError, "Server Internal Error")
		return
	}
	m := c.Media()
	if isSDP(req) {
		nm, err := Negotiate(req.Body(), m.Codec.Name)
		if err != nil {
			code, reason := statusOf(err)
			s.respond(req, tx, code, reason)
			return
		}
		if nm.Codec.PayloadType != m.Codec.PayloadType {
			s.respond(req, tx, siplib.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		c.mu.Lock()
		c.media = nm
		c.mu.Unlock()
		c.applyMedia(nm)
		c.log.Info("sip: re-INVITE", "direction", string(nm.Offered), "hold", nm.Hold(), "remote", nm.RemoteRTP.String())
		m = nm
	}
	// Without a body (a session refresh) our answer doubles as the offer
	// and the ACK's answer is ignored: the session does not change.
	body, err := c.answer(m)
	if err != nil {
		s.respond(req, tx, siplib.StatusInternalServerError, "Server Internal Error")
		return
	}
	res := siplib.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(siplib.HeaderClone(&s.dialogs[transportOf(req)].ContactHDR))
	var acked chan struct{}
	if transportOf(req) == "udp" {
		acked = make(chan struct{})
		c.reackMu.Lock()
		c.reackCSeq, c.reackCh = req.CSeq().SeqNo, acked
		c.reackMu.Unlock()
	}
	if err := tx.Respond(res); err != nil {
		c.log.Debug("sip: re-INVITE answer failed", "error", err)
		return
	}
	if acked != nil {
		s.retransmitUntilACK(c, tx, res, acked)
	}
}

// retransmitUntilACK resends a re-INVITE's 200 OK over UDP (T1 doubling up
// to T2, RFC 3261 §13.3.1.4) until its ACK, for at most ACKTimeout or
// until the call ends. A lost ACK only stops the retransmissions: the
// session already changed.
func (s *Server) retransmitUntilACK(c *Call, tx siplib.ServerTransaction, res *siplib.Response, acked chan struct{}) {
	deadline := time.NewTimer(s.cfg.ACKTimeout)
	defer deadline.Stop()
	interval := siplib.T1
	retrans := time.NewTimer(interval)
	defer retrans.Stop()
	for {
		select {
		case <-acked:
			return
		case <-retrans.C:
			_ = tx.Respond(res)
			interval = min(2*interval, siplib.T2)
			retrans.Reset(interval)
		case <-deadline.C:
			c.log.Info("sip: no ACK for the re-INVITE's 200 OK")
			return
		case <-c.done:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// ackReinvite closes the pending re-INVITE's ACK channel if ack is its.
func (c *Call) ackReinvite(ack *siplib.Request) {
	cseq := ack.CSeq()
	if cseq == nil {
		return
	}
	c.reackMu.Lock()
	defer c.reackMu.Unlock()
	if c.reackCh != nil && cseq.SeqNo == c.reackCSeq {
		close(c.reackCh)
		c.reackCh = nil
	}
}

// transportOf is a request's transport in lower case ("udp", "tcp").
func transportOf(req *siplib.Request) string {
	switch req.Transport() {
	case "TCP", "tcp":
		return "tcp"
	case "UDP", "udp":
		return "udp"
	}
	return ""
}

// sanitize makes s safe inside a quoted Warning header.
func sanitize(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if ch == '"' || ch == '\\' || ch < 0x20 || ch > 0x7e {
			b[i] = '\''
		}
	}
	return string(b)
}

// reject sends a final error response to the INVITE of dtx (with the
// dialog's To tag) and returns at once. sipgo's DialogServerSession.Respond
// would wait for the caller's ACK of it, until the transaction ends (Timer
// H, 64·T1 = 32 s), holding the call's goroutine, its registration and
// Shutdown for a caller that never ACKs. The INVITE server transaction
// retransmits the response and absorbs the ACK on its own (RFC 3261
// §17.2.1), and Shutdown's closing of the user agent ends it.
func reject(tx siplib.ServerTransaction, dtx *sipgo.DialogServerSession, code int, reason string) {
	res := siplib.NewResponseFromRequest(dtx.InviteRequest, code, reason, nil)
	_ = tx.Respond(res)
}
