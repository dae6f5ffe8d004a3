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
)

// errNotLoopback refuses a datagram to an address outside 127.0.0.0/8 or
// ::1: this tool talks to nothing but this machine's loopback.
var errNotLoopback = errors.New("load: refusing to send outside loopback")

// rcvBuf is the socket receive buffer asked for (SO_RCVBUFFORCE when root):
// a reader descheduled for a while must not lose packets to a full buffer.
const rcvBuf = 1 << 20

// tapConn is the UDP socket of one receiving call, handed to Pion through an
// ICE UDP mux. Each datagram is stamped with its kernel receive time
// (SO_TIMESTAMPNS) before Pion sees it; RTP packets go to tap, which says
// whether Pion should get them too (a call that decodes) or not (a call that
// only counts: its SRTP is then never decrypted). Writes outside loopback
// are refused.
//
// Only one goroutine reads (the mux's); writes may come from any.
type tapConn struct {
	*net.UDPConn
	tap     func(t int64, b []byte) (pass bool)
	oob     []byte
	refused atomic.Uint64
}

// listenTap opens a timestamping UDP socket on 127.0.0.1 with a free port.
func listenTap(tap func(int64, []byte) bool) (*tapConn, error) {
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
	return &tapConn{UDPConn: c, tap: tap, oob: make([]byte, 128)}, nil
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter: it returns the next
// datagram that Pion should see.
func (c *tapConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, oobn, _, addr, err := c.UDPConn.ReadMsgUDPAddrPort(b, c.oob)
		if err != nil {
			return n, addr, err
		}
		if c.tap != nil && classify(b[:n]) == kindRTP {
			t, ok := kernelTime(c.oob[:oobn])
			if !ok {
				t = time.Now().UnixNano()
			}
			if !c.tap(t, b[:n]) {
				continue
			}
		}
		return n, addr, nil
	}
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
		c.refused.Add(1)
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

// kernelTime finds SCM_TIMESTAMPNS in a control message buffer (cmsg(3):
// a cmsghdr of Len, Level, Type, then the data, each message aligned to the
// word size) and returns it as Unix nanoseconds.
func kernelTime(oob []byte) (int64, bool) {
	const align = 8 // sizeof(size_t) on the 64-bit Linux this tool targets
	const hdr = 16  // Len uint64, Level int32, Type int32
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return sec*int64(time.Second) + nsec, true
		}
		next := (l + align - 1) &^ (align - 1)
		if next > len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
