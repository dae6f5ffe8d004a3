package plainrtp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// ParsePortRange parses "MIN-MAX" (the -rtp-ports flag). The range must hold
// at least one even/odd pair: MIN ≥ 1024, MAX ≤ 65535. An empty string is
// the zero range (the OS picks ports).
func ParsePortRange(s string) (min, max int, err error) {
	if strings.TrimSpace(s) == "" {
		return 0, 0, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: %q: want MIN-MAX, e.g. 40000-40999", ErrPortRange, s)
	}
	if a < 1024 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("%w: %q: want 1024 ≤ MIN ≤ MAX ≤ 65535", ErrPortRange, s)
	}
	if (a+1)&^1+1 > b {
		return 0, 0, fmt.Errorf("%w: %q: holds no even/odd port pair", ErrPortRange, s)
	}
	return a, b, nil
}

// PortPool hands out RTP/RTCP port pairs: an even RTP port and the odd port
// after it (RFC 3550 §11). Safe for concurrent use. The zero value, or one
// with Min and Max zero, lets the OS pick ephemeral ports (still an even
// pair).
type PortPool struct {
	// Min and Max bound the ports (inclusive). Zero: any port.
	Min, Max int

	mu   sync.Mutex
	used map[int]bool // guarded by mu: RTP ports handed out
	next int          // guarded by mu: where the next search starts
}

// NewPortPool returns a pool over [min, max]; both zero for OS-picked ports.
func NewPortPool(min, max int) *PortPool { return &PortPool{Min: min, Max: max} }

// InUse is how many pairs are handed out and not yet released.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// listen binds an even/odd UDP pair on ip. The caller owns both conns and
// must call release(rtp port) after closing them.
func (p *PortPool) listen(ip netip.Addr) (rtpc, rtcpc *net.UDPConn, err error) {
	if p.Min == 0 && p.Max == 0 {
		return p.listenEphemeral(ip)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used == nil {
		p.used = make(map[int]bool)
	}
	first := (p.Min + 1) &^ 1 // lowest even port in range
	last := p.Max - 1         // highest possible RTP port
	if p.next < first || p.next > last {
		p.next = first
	}
	n := (last-first)/2 + 1
	for i := 0; i < n; i++ {
		port := p.next
		p.next += 2
		if p.next > last {
			p.next = first
		}
		if p.used[port] {
			continue
		}
		rtpc, rtcpc, err = bindPair(ip, port)
		if err != nil {
			continue // taken by someone else: try the next pair
		}
		p.used[port] = true
		return rtpc, rtcpc, nil
	}
	return nil, nil, fmt.Errorf("%w in %d-%d", ErrNoPorts, p.Min, p.Max)
}

// listenEphemeral asks the OS for a port until it gives an even one whose
// odd neighbour is free too.
func (p *PortPool) listenEphemeral(ip netip.Addr) (*net.UDPConn, *net.UDPConn, error) {
	for range 64 {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrNoPorts, err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			_ = c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			_ = c.Close()
			continue
		}
		return c, c2, nil
	}
	return nil, nil, ErrNoPorts
}

// release returns a pair to the pool.
func (p *PortPool) release(port int) {
	if p.Min == 0 && p.Max == 0 {
		return
	}
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

func bindPair(ip netip.Addr, port int) (*net.UDPConn, *net.UDPConn, error) {
	a, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, nil, err
	}
	b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
	if err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, b, nil
}
