package main

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, 16+len(data))
	binary.NativeEndian.PutUint64(b, uint64(16+len(data)))
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	copy(b[16:], data)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestParseCmsgs(t *testing.T) {
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts, 1700000000)
	binary.NativeEndian.PutUint64(ts[8:], 123456789)
	other := cmsg(syscall.SOL_IP, 8, []byte{1, 2, 3, 4}) // e.g. IP_PKTINFO-ish, padded
	oob := append(other, cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS, ts)...)
	drops := make([]byte, 4)
	binary.NativeEndian.PutUint32(drops, 17)
	oob = append(oob, cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, drops)...)
	got, d, ok := parseCmsgs(oob)
	if !ok || got != 1700000000*int64(time.Second)+123456789 || d != 17 {
		t.Errorf("got %d %d %v", got, d, ok)
	}
	if _, _, ok := parseCmsgs(other); ok {
		t.Error("found a timestamp where there is none")
	}
	if _, _, ok := parseCmsgs(oob[:20]); ok {
		t.Error("truncated buffer accepted")
	}
}

func TestTapConnStampsRTPAndPassesTheRest(t *testing.T) {
	var mu sync.Mutex
	var stamps []int64
	var seqs []uint16
	c, err := listenTap(func(ts int64, _ netip.AddrPort, b []byte) bool {
		h, err := parseRTPHeader(new(rtp.Header), b)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		stamps = append(stamps, ts)
		seqs = append(seqs, h.Seq)
		return h.Seq%2 == 0 // pass even packets on
	}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tx, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	before := time.Now().UnixNano()
	for seq := uint16(1); seq <= 4; seq++ {
		p, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq}, Payload: []byte{1, 2, 3}}).Marshal()
		if _, err := tx.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Write([]byte{0, 1, 0, 0}); err != nil { // STUN-looking
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []int
	for range 3 {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if from.(*net.UDPAddr).Port != tx.LocalAddr().(*net.UDPAddr).Port {
			t.Errorf("from %v", from)
		}
		got = append(got, n)
	}
	after := time.Now().UnixNano()
	// Passed on: RTP 2 and 4 (15 bytes each), then the STUN-looking datagram.
	if len(got) != 3 || got[0] != 15 || got[1] != 15 || got[2] != 4 {
		t.Errorf("read sizes %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) != 4 {
		t.Fatalf("tapped %v", seqs)
	}
	for i, ts := range stamps {
		if ts < before-int64(time.Second) || ts > after {
			t.Errorf("stamp %d outside [%d, %d]", ts, before, after)
		}
		if i > 0 && ts < stamps[i-1] {
			t.Errorf("stamps not monotone: %v", stamps)
		}
	}
}

func TestTapConnRefusesNonLoopback(t *testing.T) {
	c, err := listenTap(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, a := range []string{"192.0.2.2:9", "10.0.0.1:9", "8.8.8.8:53", "[fd00::2]:9"} {
		ap := netip.MustParseAddrPort(a)
		if _, err := c.WriteToAddrPort([]byte("x"), ap); !errors.Is(err, errNotLoopback) {
			t.Errorf("%s: %v", a, err)
		}
		if _, err := c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(ap)); !errors.Is(err, errNotLoopback) {
			t.Errorf("%s: %v", a, err)
		}
	}
	// Loopback goes through (to a port that is ours, so nothing is bothered).
	if _, err := c.WriteToAddrPort([]byte("x"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Errorf("loopback: %v", err)
	}
}
