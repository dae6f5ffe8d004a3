package sip

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
)

// Defaults of Config.
const (
	// DefaultAnswerTimeout bounds how long a bot may take to take a call
	// (the contract's 5 s; then 503).
	DefaultAnswerTimeout = 5 * time.Second
	// DefaultACKTimeout is how long a 200 OK waits for its ACK before the
	// call is ended with BYE: 64·T1 (RFC 3261 §13.3.1.4, as Timer H).
	DefaultACKTimeout = 32 * time.Second
	// DefaultByeTimeout bounds a BYE we send.
	DefaultByeTimeout = 5 * time.Second
)

// Config configures a Server. The zero value listens nowhere; set Listen.
type Config struct {
	// Listen are the SIP listen addresses, "udp:HOST:PORT" or
	// "tcp:HOST:PORT" (ParseListen parses -sip-listen). Port 0 picks one
	// (see Server.Addrs).
	Listen []ListenAddr
	// MediaIP is the address the SDP answer (c=, o=) and Contact name: a
	// NAT's public address if there is one. If zero: the first listen
	// address's host, or, when that is unspecified (0.0.0.0), the host's
	// first non-loopback IPv4 address. RTP binds to the first listen
	// address's host (all interfaces when unspecified), whatever MediaIP.
	MediaIP netip.Addr
	// Ports hands out RTP port pairs (-rtp-ports). If nil, the OS picks.
	Ports *plainrtp.PortPool
	// Codec forces a codec for every SIP call ("pcmu", "pcma", "opus"); an
	// offer without it gets 488. If empty, the offer's preference wins.
	Codec string
	// AnswerTimeout bounds Acceptor.Accept. If zero, DefaultAnswerTimeout.
	AnswerTimeout time.Duration
	// ACKTimeout: a 200 OK not acknowledged within it ends the call with
	// BYE. If zero, DefaultACKTimeout.
	ACKTimeout time.Duration
	// RTPTimeout ends a call with no RTP from the caller for that long
	// (-rtp-timeout). If zero, plainrtp.DefaultTimeout; negative disables.
	RTPTimeout time.Duration
	// RTCPInterval is the RTCP sender report interval. If zero,
	// plainrtp.DefaultReportInterval.
	RTCPInterval time.Duration
	// Logger is the server's logger. If nil, slog.Default().
	Logger *slog.Logger
}

// ListenAddr is one SIP listen address.
type ListenAddr struct {
	Network string // "udp" or "tcp"
	Addr    string // host:port
}

func (l ListenAddr) String() string { return l.Network + ":" + l.Addr }

// ParseListen parses -sip-listen: comma-separated "udp:HOST:PORT" or
// "tcp:HOST:PORT" (a bare HOST:PORT is UDP). Empty means no SIP.
func ParseListen(s string) ([]ListenAddr, error) {
	var out []ListenAddr
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		network, addr := "udp", e
		if n, rest, ok := strings.Cut(e, ":"); ok && (strings.EqualFold(n, "udp") || strings.EqualFold(n, "tcp")) {
			network, addr = strings.ToLower(n), rest
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: want udp:HOST:PORT or tcp:HOST:PORT", ErrBadListen, e)
		}
		if _, err := netip.ParseAddr(host); err != nil && host != "" {
			return nil, fmt.Errorf("%w: %q: host must be an IP address", ErrBadListen, e)
		}
		if p, err := net.LookupPort(network, port); err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("%w: %q: bad port", ErrBadListen, e)
		}
		out = append(out, ListenAddr{Network: network, Addr: addr})
	}
	return out, nil
}

// firstIPv4 is the host's first non-loopback IPv4 address, or loopback.
func firstIPv4() netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ip = ip.Unmap()
				if ip.Is4() && !ip.IsLoopback() {
					return ip
				}
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
