package bridge

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
)

// iceUDPMux is the one UDP socket per local address that every WebRTC call
// of the process shares (LiveKit's single-port mode): Pion's ICE agents
// register their ufrag with it, and its read loop hands each datagram to the
// call whose ufrag or remote address it carries. A call therefore costs no
// socket and no read loop of its own, and a firewall needs one UDP port.
// It is opened when the Server starts and closed once its calls have ended.
type iceUDPMux struct {
	mux       *ice.MultiUDPMuxDefault
	port      int
	closeOnce sync.Once
}

// muxPortAttempts bounds how often an ephemeral port is picked again when
// another process took it between the pick and the listens on every
// address.
const muxPortAttempts = 8

// listenICEUDPMux opens the shared ICE socket on port (0: a free port picked
// now, the same on every address) on the addresses ps gathers on: loopback
// included when ps.loopback, only 127.0.0.1 with the loopbackOnly seam.
func listenICEUDPMux(port int, ps pionSettings, lf logging.LoggerFactory) (*iceUDPMux, error) {
	opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(lf.NewLogger("udpmux"))}
	if ps.loopback || ps.loopbackOnly {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	if ps.loopbackOnly {
		opts = append(opts,
			ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4),
			ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }))
	} else {
		// No IPv6 link-local (fe80::) socket: Pion gathers a candidate on it
		// that no answer carries, and each candidate costs a call two
		// goroutines (its read loop and the mux's watcher).
		opts = append(opts, ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool { return !ip.IsLinkLocalUnicast() }))
	}
	if port != 0 {
		m, err := ice.NewMultiUDPMuxFromPort(port, opts...)
		if err != nil {
			return nil, fmt.Errorf("udp-port %d: %w", port, err)
		}
		return newICEUDPMux(m, port)
	}
	// Pion listens on each address separately: with port 0 each would get
	// a different port, so pick one free on the wildcard address first.
	var err error
	for range muxPortAttempts {
		var p int
		if p, err = freeUDPPort(ps.loopbackOnly); err != nil {
			return nil, fmt.Errorf("pick a udp port: %w", err)
		}
		var m *ice.MultiUDPMuxDefault
		if m, err = ice.NewMultiUDPMuxFromPort(p, opts...); err == nil {
			return newICEUDPMux(m, p)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("udp port: %w", err)
}

// newICEUDPMux wraps m, failing when it listens on no address at all (a
// host without a usable interface would answer with no candidate).
func newICEUDPMux(m *ice.MultiUDPMuxDefault, port int) (*iceUDPMux, error) {
	if len(m.GetListenAddresses()) == 0 {
		_ = m.Close()
		return nil, errors.New("udp port: no local address to listen on")
	}
	return &iceUDPMux{mux: m, port: port}, nil
}

// freeUDPPort returns a UDP port free right now on every IPv4 (and, unless
// v4only, IPv6) address: the port of a socket bound to the wildcard
// address, closed again.
func freeUDPPort(v4only bool) (int, error) {
	network, addr := "udp", "[::]:0"
	if v4only {
		network, addr = "udp4", "0.0.0.0:0"
	}
	c, err := net.ListenPacket(network, addr)
	if err != nil && !v4only { // no IPv6 on this host
		c, err = net.ListenPacket("udp4", "0.0.0.0:0")
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// close closes the sockets (every call's muxed connection with them); safe
// to call more than once.
func (m *iceUDPMux) close() {
	m.closeOnce.Do(func() { _ = m.mux.Close() })
}
