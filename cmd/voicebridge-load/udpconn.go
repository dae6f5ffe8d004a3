package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// errNotLoopback refuses a datagram to an address outside 127.0.0.0/8 or
// ::1: this tool talks to nothing but this machine's loopback.
var errNotLoopback = errors.New("load: refusing to send outside loopback")

// rcvBuf is the socket receive buffer asked for (SO_RCVBUFFORCE when root):
// the reader lets packets queue (batchSleep) and may be descheduled, and
// must not lose them to a full buffer. Losses are counted (SO_RXQ_OVFL).
const rcvBuf = 16 << 20

// tapConn is the UDP socket the receiving calls share, handed to Pion
// through an ICE UDP mux. Each datagram is stamped with its kernel receive
// time (SO_TIMESTAMPNS) before Pion sees it; RTP packets go to tap, which
// says whether Pion should get them too (a call that decodes) or not (a call
// that only counts: its SRTP is then never decrypted). Writes outside
// loopback are refused.
//
// Because the receive time comes from the kernel, reading may lag: the
// reader takes up to a batch of datagrams per system call (recvmmsg), and
// when a read did not fill the batch it sleeps batchSleep before the next,
// instead of waking for each of thousands of packets a second.
//
// Only one goroutine reads (the mux's); writes may come from any.
type tapConn struct {
	*net.UDPConn
	tap        func(t int64, from netip.AddrPort, b []byte) (pass bool)
	batchSleep time.Duration
	pc         *ipv4.PacketConn
	msgs       []ipv4.Message
	queue      []int // indexes into msgs still to hand to Pion
	drained    bool
	drops      atomic.Uint32 // datagrams the kernel dropped (SO_RXQ_OVFL)
}

// batch is how many datagrams one read takes at most.
const batch = 64

// listenTap opens a timestamping UDP socket on 127.0.0.1 with a free port.
func listenTap(tap func(int64, netip.AddrPort, []byte) bool, batchSleep time.Duration) (*tapConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
		if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, rcvBuf); e != nil {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("load: SO_TIMESTAMPNS: %w", err)
	}
	t := &tapConn{UDPConn: c, tap: tap, batchSleep: batchSleep, pc: ipv4.NewPacketConn(c), msgs: make([]ipv4.Message, batch)}
	for i := range t.msgs {
		t.msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		t.msgs[i].OOB = make([]byte, 128)
	}
	return t, nil
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter: it returns the next
// datagram that Pion should see.
func (c *tapConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		if len(c.queue) > 0 {
			m := &c.msgs[c.queue[0]]
			c.queue = c.queue[1:]
			if ua, _ := m.Addr.(*net.UDPAddr); ua != nil {
				return copy(b, m.Buffers[0][:m.N]), ua.AddrPort(), nil
			}
			continue
		}
		if c.drained && c.batchSleep > 0 {
			time.Sleep(c.batchSleep)
		}
		n, err := c.pc.ReadBatch(c.msgs, 0)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		c.drained = n < len(c.msgs)
		c.queue = c.queue[:0]
		for i := range n {
			if c.take(&c.msgs[i]) {
				c.queue = append(c.queue, i)
			}
		}
	}
}

// take accounts one datagram and reports whether Pion should get it.
func (c *tapConn) take(m *ipv4.Message) bool {
	t, drops, ok := parseCmsgs(m.OOB[:m.NN])
	if drops != 0 {
		c.drops.Store(drops)
	}
	data := m.Buffers[0][:m.N]
	if c.tap == nil || !isRTP(data) {
		return true
	}
	if !ok {
		t = time.Now().UnixNano()
	}
	var from netip.AddrPort
	if ua, _ := m.Addr.(*net.UDPAddr); ua != nil {
		from = ua.AddrPort()
	}
	return c.tap(t, from, data)
}

// ReadFrom implements net.PacketConn.
func (c *tapConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteToAddrPort implements ice.AddrPortReaderWriter, loopback only.
func (c *tapConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if !addr.Addr().Unmap().IsLoopback() {
		return 0, errNotLoopback
	}
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// WriteTo implements net.PacketConn, loopback only.
func (c *tapConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errNotLoopback
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// parseCmsgs reads the control messages of one datagram (cmsg(3): a
// cmsghdr of Len, Level, Type, then the data, each message aligned to the
// word size): SCM_TIMESTAMPNS as Unix nanoseconds (ok tells it was there)
// and SO_RXQ_OVFL, the socket's running count of dropped datagrams.
func parseCmsgs(oob []byte) (t int64, drops uint32, ok bool) {
	const align = 8 // sizeof(size_t) on the 64-bit Linux this tool targets
	const hdr = 16  // Len uint64, Level int32, Type int32
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if l < hdr || l > len(oob) {
			return t, drops, ok
		}
		switch {
		case level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= hdr+16:
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			t, ok = sec*int64(time.Second)+nsec, true
		case level == syscall.SOL_SOCKET && typ == syscall.SO_RXQ_OVFL && l >= hdr+4:
			drops = binary.NativeEndian.Uint32(oob[hdr:])
		}
		next := (l + align - 1) &^ (align - 1)
		if next > len(oob) {
			return t, drops, ok
		}
		oob = oob[next:]
	}
	return t, drops, ok
}
