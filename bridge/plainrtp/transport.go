package plainrtp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Defaults of Config.
const (
	// DefaultTimeout is how long a call may go without RTP from the caller
	// (the -rtp-timeout default).
	DefaultTimeout = 30 * time.Second
	// DefaultReportInterval is the RTCP sender report interval (RFC 3550
	// §6.2 recommends 5 s as the minimum for small sessions).
	DefaultReportInterval = 5 * time.Second
)

// maxPacket bounds a packet we send or read: an Ethernet MTU.
const maxPacket = 1500

// Sink receives every RTP packet that arrives from the caller, on the
// transport's read goroutine, one at a time. p and p.Payload are valid only
// until Sink returns (the buffer is reused); copy what you keep. Sink must
// not block for long: packets queue in the socket meanwhile.
type Sink func(p *rtp.Packet)

// Config configures a Transport. The zero value works for tests on loopback
// except for the remote address, which SetRemote gives.
type Config struct {
	// Pool hands out the port pair. If nil, the OS picks one.
	Pool *PortPool
	// LocalIP is the address to bind. If invalid (zero), 0.0.0.0.
	LocalIP netip.Addr
	// ClockRate is the RTP clock of the codec (8000 for G.711, 48000 for
	// Opus), used to extrapolate the RTP timestamp of sender reports. If
	// zero, 8000.
	ClockRate uint32
	// Timeout ends the transport with ErrRTPTimeout when no RTP came from
	// the caller for that long (counted from Start, and paused while the
	// caller said it sends nothing, see ExpectRTP). If zero,
	// DefaultTimeout; negative disables it.
	Timeout time.Duration
	// ReportInterval is the RTCP sender report interval. If zero,
	// DefaultReportInterval.
	ReportInterval time.Duration
	// Logger logs latching and the end. If nil, slog.Default().
	Logger *slog.Logger
}

// Stats are a transport's counters.
type Stats struct {
	PacketsSent, OctetsSent uint64 // RTP sent: packets, payload octets
	PacketsReceived         uint64 // RTP received from the caller
	PacketsDropped          uint64 // received but unparsable or from a stranger
	ReportsSent             uint64 // RTCP sender reports sent
	PacketsHeld             uint64 // written while on hold (SetSending(false)), not sent
}

// Transport is one call's plain RTP/AVP media: see the package comment.
// WriteRTP may be called from any goroutine; the other methods too.
type Transport struct {
	cfg      Config
	log      *slog.Logger
	rtpConn  *net.UDPConn
	rtcpConn *net.UDPConn
	port     int

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	start  sync.Once
	close  sync.Once

	allowed    atomic.Pointer[[]netip.Addr]   // if set, the only source IPs taken
	remote     atomic.Pointer[netip.AddrPort] // where RTP goes
	remoteRTCP atomic.Pointer[netip.AddrPort] // where RTCP goes
	latched    atomic.Bool                    // remote is the caller's RTP source
	rtcpLatch  atomic.Bool                    // remoteRTCP is the caller's RTCP source
	sending    atomic.Bool                    // false while on hold: WriteRTP discards
	expectRTP  atomic.Bool                    // false while the caller sends nothing
	lastRecv   atomic.Int64                   // unix nanos of the last RTP in (or of a reset)

	// Sender state for RTCP sender reports, written by WriteRTP.
	ssrc        atomic.Uint32
	lastTS      atomic.Uint32
	lastSent    atomic.Int64 // unix nanos
	packetsSent atomic.Uint64
	octetsSent  atomic.Uint64
	held        atomic.Uint64

	packetsRecv atomic.Uint64
	dropped     atomic.Uint64
	reports     atomic.Uint64

	bufs sync.Pool // *[]byte of maxPacket: marshal buffers
}

// Listen binds a port pair and returns a Transport that is not yet reading.
// Call SetRemote and Start, and always Close.
func Listen(cfg Config) (*Transport, error) {
	if cfg.Pool == nil {
		cfg.Pool = &PortPool{}
	}
	if !cfg.LocalIP.IsValid() {
		cfg.LocalIP = netip.IPv4Unspecified()
	}
	if cfg.ClockRate == 0 {
		cfg.ClockRate = 8000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rc, cc, err := cfg.Pool.listen(cfg.LocalIP)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:      cfg,
		rtpConn:  rc,
		rtcpConn: cc,
		port:     rc.LocalAddr().(*net.UDPAddr).Port,
		bufs: sync.Pool{New: func() any {
			b := make([]byte, maxPacket)
			return &b
		}},
	}
	t.log = cfg.Logger.With("rtp_port", t.port)
	t.ctx, t.cancel = context.WithCancelCause(context.Background())
	t.sending.Store(true)
	t.expectRTP.Store(true)
	return t, nil
}

// LocalPort is the RTP port (RTCP is LocalPort()+1), for the SDP answer.
func (t *Transport) LocalPort() int { return t.port }

// SetRemote sets where RTP (and RTCP) go, from the SDP: rtcp is the rtp
// port + 1 unless an a=rtcp attribute said otherwise. It forgets a latched
// source, so the next caller packet latches again (a re-INVITE that moved
// the caller's media).
func (t *Transport) SetRemote(rtpAddr, rtcpAddr netip.AddrPort) {
	r, c := rtpAddr, rtcpAddr
	t.remote.Store(&r)
	t.remoteRTCP.Store(&c)
	t.latched.Store(false)
	t.rtcpLatch.Store(false)
}

// AllowSources restricts which source IPs the transport accepts RTP from
// and latches to (e.g. the SDP address and the SIP signaling source), so a
// stranger who guesses the port cannot take the call's media over. None:
// any source may latch first.
func (t *Transport) AllowSources(ips ...netip.Addr) {
	l := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() {
			l = append(l, ip.Unmap())
		}
	}
	t.allowed.Store(&l)
}

func (t *Transport) allowedSource(ip netip.Addr) bool {
	l := t.allowed.Load()
	if l == nil || len(*l) == 0 {
		return true
	}
	for _, a := range *l {
		if a == ip {
			return true
		}
	}
	return false
}

// Remote is where RTP currently goes (zero before SetRemote).
func (t *Transport) Remote() netip.AddrPort {
	if p := t.remote.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// SetSending pauses (false: hold, the caller asked us not to send) or
// resumes sending. While paused WriteRTP discards packets and returns nil,
// so the pacer's clock and timestamps keep running.
func (t *Transport) SetSending(on bool) { t.sending.Store(on) }

// ExpectRTP tells the inactivity timer whether the caller said it sends
// (sendrecv/sendonly) or not (recvonly/inactive: the timer pauses).
func (t *Transport) ExpectRTP(on bool) {
	t.lastRecv.Store(time.Now().UnixNano())
	t.expectRTP.Store(on)
}

// Start starts reading RTP into sink, RTCP, sender reports and the
// inactivity timer. Only the first call has an effect.
func (t *Transport) Start(sink Sink) {
	t.start.Do(func() {
		t.lastRecv.Store(time.Now().UnixNano())
		t.wg.Add(3)
		go t.readRTP(sink)
		go t.readRTCP()
		go t.timers()
	})
}

// Done is closed when the transport ended: Close, or ErrRTPTimeout.
func (t *Transport) Done() <-chan struct{} { return t.ctx.Done() }

// Err is why the transport ended (nil while it runs).
func (t *Transport) Err() error { return context.Cause(t.ctx) }

// Close stops the goroutines, closes the sockets and returns the ports to
// the pool. Idempotent; returns nil.
func (t *Transport) Close() error {
	t.close.Do(func() {
		t.cancel(ErrClosed)
		_ = t.rtpConn.Close()
		_ = t.rtcpConn.Close()
		t.wg.Wait()
		t.cfg.Pool.release(t.port)
	})
	return nil
}

// Stats returns the counters.
func (t *Transport) Stats() Stats {
	return Stats{
		PacketsSent:     t.packetsSent.Load(),
		OctetsSent:      t.octetsSent.Load(),
		PacketsReceived: t.packetsRecv.Load(),
		PacketsDropped:  t.dropped.Load(),
		ReportsSent:     t.reports.Load(),
		PacketsHeld:     t.held.Load(),
	}
}

// WriteRTP sends p to the remote (the caller's latched RTP source once one
// arrived). It does not retain p. It allocates nothing in steady state and
// never waits on a lock: the marshal buffer comes from a pool. Returns
// ErrClosed after the transport ended, ErrNoRemote before SetRemote.
func (t *Transport) WriteRTP(p *rtp.Packet) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	dst := t.remote.Load()
	if dst == nil {
		return ErrNoRemote
	}
	if !t.sending.Load() {
		t.held.Add(1)
		return nil
	}
	bp := t.bufs.Get().(*[]byte)
	n, err := p.MarshalTo(*bp)
	if err == nil {
		_, err = t.rtpConn.WriteToUDPAddrPort((*bp)[:n], *dst)
	}
	t.bufs.Put(bp)
	if err != nil {
		if t.ctx.Err() != nil {
			return ErrClosed
		}
		return err
	}
	t.ssrc.Store(p.SSRC)
	t.lastTS.Store(p.Timestamp)
	t.lastSent.Store(time.Now().UnixNano())
	t.packetsSent.Add(1)
	t.octetsSent.Add(uint64(len(p.Payload)))
	return nil
}

func (t *Transport) readRTP(sink Sink) {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	var pkt rtp.Packet
	for {
		n, src, err := t.rtpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.ctx.Err() != nil {
				return
			}
			continue // e.g. ICMP port unreachable surfacing on Linux
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil || pkt.Version != 2 {
			t.dropped.Add(1)
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if !t.allowedSource(src.Addr()) {
			t.dropped.Add(1)
			continue
		}
		if !t.latched.Load() {
			s := src
			t.remote.Store(&s)
			t.latched.Store(true)
			t.log.Debug("rtp: latched to the caller's source", "remote", src.String())
		} else if r := t.remote.Load(); r != nil && *r != src {
			t.dropped.Add(1) // not the caller we latched to
			continue
		}
		t.lastRecv.Store(time.Now().UnixNano())
		t.packetsRecv.Add(1)
		if sink != nil {
			sink(&pkt)
		}
	}
}

func (t *Transport) readRTCP() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		_, src, err := t.rtcpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.ctx.Err() != nil {
				return
			}
			continue
		}
		if !t.rtcpLatch.Load() {
			s := netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			t.remoteRTCP.Store(&s)
			t.rtcpLatch.Store(true)
		}
	}
}

// timers sends sender reports and watches for inactivity.
func (t *Transport) timers() {
	defer t.wg.Done()
	report := time.NewTicker(t.cfg.ReportInterval)
	defer report.Stop()
	check := t.cfg.Timeout / 4
	if check <= 0 || check > time.Second {
		check = time.Second
	}
	watch := time.NewTicker(check)
	defer watch.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case now := <-report.C:
			t.sendReport(now)
		case now := <-watch.C:
			if t.cfg.Timeout < 0 {
				continue
			}
			if !t.expectRTP.Load() {
				t.lastRecv.Store(now.UnixNano())
				continue
			}
			if idle := now.UnixNano() - t.lastRecv.Load(); idle > int64(t.cfg.Timeout) {
				t.log.Info("rtp: caller silent, ending", "idle", time.Duration(idle).Round(time.Millisecond))
				t.cancel(ErrRTPTimeout)
				return
			}
		}
	}
}
