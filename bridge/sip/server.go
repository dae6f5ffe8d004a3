package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
)

// Acceptor is implemented by the bridge: it decides who takes a SIP call.
type Acceptor interface {
	// Accept is called once per new INVITE whose offer negotiated, on the
	// INVITE's goroutine, before any answer. It returns once a bot has
	// taken the call (the bridge dialed -bot-url) with the handler of the
	// call's life, or an error that rejects the call: wrap ErrBusy
	// (at -max-calls) or ErrUnavailable (bot unreachable) for a 503. ctx is
	// done when the caller CANCELs (487), after Config.AnswerTimeout (503)
	// or at Shutdown. The call's Transport is bound (its remote set from
	// the offer) but not started; the handler may write to it after Started.
	Accept(ctx context.Context, c *Call) (CallHandler, error)
}

// CallHandler is the bridge's side of an accepted call.
type CallHandler interface {
	// Started is called once, when the caller's ACK arrived: media may
	// flow (the pacer starts writing to Call.Transport).
	Started()
	// HandleRTP is called for every RTP packet from the caller (audio and
	// RFC 4733 events), on the transport's read goroutine, from the 200 OK
	// on. p is valid only until it returns (plainrtp.Sink).
	HandleRTP(p *rtp.Packet)
	// Ended is called exactly once when the call is over, with the cause:
	// ErrHangup (caller's BYE), ErrLocalHangup (Call.Hangup),
	// plainrtp.ErrRTPTimeout, ErrNoACK, ErrCanceled or ErrShutdown. By then
	// the BYE (if any) was sent and the transport is closed.
	Ended(cause error)
}

// Server is the SIP user agent server: it answers INVITEs on the listen
// addresses and owns every call until it ends. Safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	acc     Acceptor
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialogs map[string]*sipgo.DialogUA // by lower-case transport; read-only after New

	listeners []io.Closer
	addrs     []ListenAddr

	ctx       context.Context // cancelled by Shutdown
	cancel    context.CancelCauseFunc
	wg        sync.WaitGroup // calls
	serving   sync.WaitGroup // the serve loops: one per listener
	closeOnce sync.Once      // listeners and the user agent
	nextID    atomic.Uint64  // SDP session ids
	bindIP    netip.Addr     // RTP binds here: the first listen host, or all interfaces

	mu     sync.Mutex
	closed bool             // guarded by mu: no new calls
	calls  map[string]*Call // guarded by mu: by dialog id
}

// New binds the listen addresses and serves SIP until Shutdown.
func New(cfg Config, acc Acceptor) (*Server, error) {
	if acc == nil {
		return nil, errors.New("sip: New: nil Acceptor")
	}
	if len(cfg.Listen) == 0 {
		return nil, fmt.Errorf("%w: no listen address", ErrBadListen)
	}
	if _, err := ParseCodec(cfg.Codec); err != nil {
		return nil, err
	}
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = DefaultAnswerTimeout
	}
	if cfg.ACKTimeout <= 0 {
		cfg.ACKTimeout = DefaultACKTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Ports == nil {
		cfg.Ports = &plainrtp.PortPool{}
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("caller", "sip"),
		acc:     acc,
		dialogs: map[string]*sipgo.DialogUA{},
		calls:   map[string]*Call{},
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())

	// Bind first, so the real ports are known for Contact and Via.
	type bound struct {
		l    ListenAddr
		udp  *net.UDPConn
		tcp  net.Listener
		port int
		host string
	}
	var bs []bound
	fail := func(err error) (*Server, error) {
		for _, b := range bs {
			if b.udp != nil {
				_ = b.udp.Close()
			} else {
				_ = b.tcp.Close()
			}
		}
		return nil, err
	}
	for _, l := range cfg.Listen {
		b := bound{l: l}
		switch l.Network {
		case "udp":
			a, err := net.ResolveUDPAddr("udp", l.Addr)
			if err != nil {
				return fail(fmt.Errorf("%w: %s: %v", ErrBadListen, l, err))
			}
			c, err := net.ListenUDP("udp", a)
			if err != nil {
				return fail(fmt.Errorf("sip: listen %s: %w", l, err))
			}
			b.udp = c
			b.port = c.LocalAddr().(*net.UDPAddr).Port
		case "tcp":
			c, err := net.Listen("tcp", l.Addr)
			if err != nil {
				return fail(fmt.Errorf("sip: listen %s: %w", l, err))
			}
			b.tcp = c
			b.port = c.Addr().(*net.TCPAddr).Port
		default:
			return fail(fmt.Errorf("%w: %s", ErrBadListen, l))
		}
		b.host, _, _ = net.SplitHostPort(l.Addr)
		bs = append(bs, b)
	}
	s.bindIP = netip.IPv4Unspecified()
	if ip, err := netip.ParseAddr(bs[0].host); err == nil && !ip.IsUnspecified() {
		s.bindIP = ip.Unmap()
	}
	if !cfg.MediaIP.IsValid() {
		ip, err := netip.ParseAddr(bs[0].host)
		if err != nil || ip.IsUnspecified() {
			ip = firstIPv4()
		}
		s.cfg.MediaIP = ip.Unmap()
	}
	host := s.cfg.MediaIP.String()

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("voicebridge"), sipgo.WithUserAgentHostname(host))
	if err != nil {
		return fail(err)
	}
	s.ua = ua
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientLogger(s.log)); err != nil {
		_ = ua.Close()
		return fail(err)
	}
	if s.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(s.log)); err != nil {
		_ = ua.Close()
		return fail(err)
	}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.onBye)
	s.srv.OnCancel(s.onStrayCancel)
	s.srv.OnOptions(s.onOptions)

	for _, b := range bs {
		uri := siplib.Uri{Scheme: "sip", User: "voicebridge", Host: host, Port: b.port}
		if b.l.Network == "tcp" {
			params := siplib.NewParams()
			params.Add("transport", "tcp")
			uri.UriParams = params
		}
		if _, ok := s.dialogs[b.l.Network]; !ok {
			s.dialogs[b.l.Network] = &sipgo.DialogUA{
				Client:         s.client,
				ContactHDR:     siplib.ContactHeader{Address: uri},
				RewriteContact: true, // in-dialog requests go where the INVITE came from (NAT, TCP)
			}
		}
		actual := ListenAddr{Network: b.l.Network, Addr: net.JoinHostPort(b.host, fmt.Sprint(b.port))}
		s.addrs = append(s.addrs, actual)
		s.serving.Add(1)
		if b.udp != nil {
			s.listeners = append(s.listeners, b.udp)
			go func(c *net.UDPConn) {
				defer s.serving.Done()
				if err := s.srv.ServeUDP(c); err != nil && s.ctx.Err() == nil {
					s.log.Error("sip: serve udp ended", "error", err)
				}
			}(b.udp)
		} else {
			s.listeners = append(s.listeners, b.tcp)
			go func(l net.Listener) {
				defer s.serving.Done()
				err := s.srv.ServeTCP(l) // always non-nil
				if s.ctx.Err() == nil {
					s.log.Error("sip: serve tcp ended", "error", err)
				}
			}(b.tcp)
		}
		s.log.Info("sip: listening", "addr", actual.String(), "media_ip", host)
	}
	return s, nil
}

// Addrs are the bound listen addresses (with the real ports).
func (s *Server) Addrs() []ListenAddr { return append([]ListenAddr(nil), s.addrs...) }

// MediaIP is the address in SDP answers.
func (s *Server) MediaIP() netip.Addr { return s.cfg.MediaIP }

// Calls is the number of calls between INVITE and their end.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Hangup ends the call with SIP Call-ID callID: BYE once answered; a call
// still waiting in Accept is rejected with 503 (its Accept ctx ends with
// ErrLocalHangup). It returns at once; Call.Done tells when the call is
// over. ErrCallNotFound if there is no such call.
func (s *Server) Hangup(callID string) error {
	s.mu.Lock()
	var found *Call
	for _, c := range s.calls {
		if c.CallID == callID {
			found = c
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		return ErrCallNotFound
	}
	found.Hangup()
	return nil
}

// Shutdown refuses new calls (503), sends BYE to every answered call,
// rejects the pending ones, waits for them to end (or ctx) and closes the
// listeners. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel(ErrShutdown)

	callsDone := make(chan struct{})
	go func() {
		for {
			s.mu.Lock()
			n := len(s.calls)
			s.mu.Unlock()
			if n == 0 {
				close(callsDone)
				return
			}
			select {
			case <-ctx.Done():
				close(callsDone)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	<-callsDone
	s.closeOnce.Do(func() {
		for _, l := range s.listeners {
			_ = l.Close()
		}
		_ = s.ua.Close()
	})
	// The serve loops end as soon as their sockets are closed: always joined,
	// even past ctx, so no sipgo reader outlives Shutdown (only calls still
	// ending, e.g. a BYE waiting for its answer, are bounded by ctx).
	s.serving.Wait()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enter registers a new call's goroutine, unless shutting down.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) add(c *Call) {
	s.mu.Lock()
	s.calls[c.dialogID] = c
	s.mu.Unlock()
}

func (s *Server) remove(c *Call) {
	s.mu.Lock()
	delete(s.calls, c.dialogID)
	s.mu.Unlock()
}

// lookup finds the call of an in-dialog request.
func (s *Server) lookup(req *siplib.Request) *Call {
	id, err := siplib.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

// respond answers a request statelessly within its transaction; errors are
// logged (there is nobody else to tell).
func (s *Server) respond(req *siplib.Request, tx siplib.ServerTransaction, code int, reason string, hdrs ...siplib.Header) {
	res := siplib.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sip: respond failed", "status", code, "method", req.Method.String(), "error", err)
	}
}

// allowHeaders are the Allow and Accept of OPTIONS and 405/415 answers.
func allowHeaders() []siplib.Header {
	return []siplib.Header{
		siplib.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"),
		siplib.NewHeader("Accept", "application/sdp"),
	}
}

func (s *Server) onOptions(req *siplib.Request, tx siplib.ServerTransaction) {
	s.respond(req, tx, siplib.StatusOK, "OK", allowHeaders()...)
}

// onStrayCancel answers a CANCEL that matched no INVITE transaction (the
// transaction layer answers matching ones: 200, then 487 to the INVITE).
func (s *Server) onStrayCancel(req *siplib.Request, tx siplib.ServerTransaction) {
	s.respond(req, tx, siplib.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
}

func (s *Server) onAck(req *siplib.Request, tx siplib.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		return // ACK of a rejected INVITE (absorbed by its transaction) or stray
	}
	c.ackReinvite(req)
	if err := c.dtx.ReadAck(req, tx); err != nil {
		s.log.Debug("sip: ACK not for this dialog's INVITE", "error", err)
	}
}

func (s *Server) onBye(req *siplib.Request, tx siplib.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(req, tx, siplib.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	c.byeIn.Store(true)
	if err := c.dtx.ReadBye(req, tx); err != nil {
		s.respond(req, tx, siplib.StatusBadRequest, "Bad Request")
	}
}

func (s *Server) onInvite(req *siplib.Request, tx siplib.ServerTransaction) {
	if !s.enter() {
		s.respond(req, tx, siplib.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer s.wg.Done()
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.onReinvite(req, tx)
		return
	}
	s.runCall(req, tx)
}

// isSDP reports whether a request carries an SDP body.
func isSDP(req *siplib.Request) bool {
	ct := req.ContentType()
	if ct == nil || len(req.Body()) == 0 {
		return false
	}
	v, _, _ := strings.Cut(ct.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(v), "application/sdp")
}
