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

// errNotLoopback: this tool sends to nothing but this machine's loopback.
var errNotLoopback = errors.New("load: refusing to send outside loopback")

const (
	rcvBuf = 16 << 20 // receive buffer asked for (SO_RCVBUFFORCE when root); losses are counted
	batch  = 64       // datagrams one read takes at most (recvmmsg)
)

// tapConn is the UDP socket the receiving calls share, handed to Pion
// through an ICE UDP mux. Each datagram is stamped with its kernel receive
// time (SO_TIMESTAMPNS); RTP packets go to tap, which says whether Pion gets
// them too. Since the time is the kernel's, reading may lag: a read takes a
// batch, and one that did not fill it sleeps batchSleep rather than waking
// for each of thousands of packets a second. One goroutine reads (the
// mux's); any may write, to loopback only.
type tapConn struct {
	*net.UDPConn
	tap        func(t int64, from netip.AddrPort, b []byte) (pass bool)
	batchSleep time.Duration
	pc         *ipv4.PacketConn
	msgs       []ipv4.Message
	next, n    int           // msgs[next:n] are still to take
	drops      atomic.Uint32 // datagrams the kernel dropped (SO_RXQ_OVFL)
}

// listenTap opens a timestamping UDP socket on 127.0.0.1 with a free port.
func listenTap(tap func(int64, netip.AddrPort, []byte) bool, batchSleep time.Duration) (*tapConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	var serr error
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, rcvBuf) != nil {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			}
		})
	}
	if err = errors.Join(err, serr); err != nil {
		c.Close()
		return nil, fmt.Errorf("load: SO_TIMESTAMPNS: %w", err)
	}
	t := &tapConn{UDPConn: c, tap: tap, batchSleep: batchSleep, pc: ipv4.NewPacketConn(c), msgs: make([]ipv4.Message, batch), next: batch, n: batch}
	for i := range t.msgs {
		t.msgs[i].Buffers, t.msgs[i].OOB = [][]byte{make([]byte, 1500)}, make([]byte, 128)
	}
	return t, nil
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter: it returns the next
// datagram that Pion should see.
func (c *tapConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		for c.next < c.n {
			m := &c.msgs[c.next]
			c.next++
			if c.take(m) {
				return copy(b, m.Buffers[0][:m.N]), m.Addr.(*net.UDPAddr).AddrPort(), nil
			}
		}
		if c.n < len(c.msgs) && c.batchSleep > 0 { // the last read drained the socket
			time.Sleep(c.batchSleep)
		}
		var err error
		if c.n, err = c.pc.ReadBatch(c.msgs, 0); err != nil {
			return 0, netip.AddrPort{}, err
		}
		c.next = 0
	}
}

// take accounts one datagram and reports whether Pion should get it.
func (c *tapConn) take(m *ipv4.Message) bool {
	ua, _ := m.Addr.(*net.UDPAddr)
	if ua == nil {
		return false
	}
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
	return c.tap(t, ua.AddrPort(), data)
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
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, ua.AddrPort())
	}
	return 0, errNotLoopback
}

// parseCmsgs reads one datagram's control messages: SCM_TIMESTAMPNS as
// Unix ns (ok: it was there) and SO_RXQ_OVFL, the socket's running count
// of dropped datagrams.
func parseCmsgs(oob []byte) (t int64, drops uint32, ok bool) {
	msgs, _ := syscall.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		switch {
		case m.Header.Level != syscall.SOL_SOCKET:
		case m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16:
			sec, nsec := int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:]))
			t, ok = sec*int64(time.Second)+nsec, true
		case m.Header.Type == syscall.SO_RXQ_OVFL && len(m.Data) >= 4:
			drops = binary.NativeEndian.Uint32(m.Data)
		}
	}
	return t, drops, ok
}
