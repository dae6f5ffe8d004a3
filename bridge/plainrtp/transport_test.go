package plainrtp

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// peer is a caller's UDP socket.
func peer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

// readRTP reads one RTP packet from c within d.
func readRTP(t *testing.T, c *net.UDPConn, d time.Duration) (*rtp.Packet, error) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	var p rtp.Packet
	return &p, p.Unmarshal(buf[:n])
}

func packet(seq uint16, ts uint32) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: 0x1234},
		Payload: SilencePayload(PayloadPCMU),
	}
}

func send(t *testing.T, from *net.UDPConn, to netip.AddrPort, p *rtp.Packet) {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// TestTransportSymmetricRTP: packets go to the SDP address until the
// caller's RTP arrives from elsewhere (a NAT), then to that source; packets
// from a third address are dropped, not delivered.
func TestTransportSymmetricRTP(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	sdpAddr, natAddr, stranger := peer(t), peer(t), peer(t)
	tr.SetRemote(addrOf(sdpAddr), netip.AddrPortFrom(loopback, addrOf(sdpAddr).Port()+1))
	var got atomic.Uint64
	tr.Start(func(p *rtp.Packet) {
		if len(p.Payload) == FrameSamples {
			got.Add(1)
		}
	})
	local := netip.AddrPortFrom(loopback, uint16(tr.LocalPort()))

	if err := tr.WriteRTP(packet(1, 160)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRTP(t, sdpAddr, 2*time.Second); err != nil || p.SequenceNumber != 1 {
		t.Fatalf("SDP address: %v %v, want packet 1", p, err)
	}

	send(t, natAddr, local, packet(100, 0))
	for tr.Stats().PacketsReceived == 0 {
		time.Sleep(time.Millisecond)
	}
	if tr.Remote() != addrOf(natAddr) {
		t.Fatalf("remote %v after the caller's packet, want its source %v", tr.Remote(), addrOf(natAddr))
	}
	if err := tr.WriteRTP(packet(2, 320)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRTP(t, natAddr, 2*time.Second); err != nil || p.SequenceNumber != 2 {
		t.Fatalf("latched source: %v %v, want packet 2", p, err)
	}

	send(t, stranger, local, packet(7, 0))
	send(t, natAddr, local, packet(101, 160)) // ordered after the stranger's
	for tr.Stats().PacketsReceived < 2 {
		time.Sleep(time.Millisecond)
	}
	st := tr.Stats()
	if st.PacketsDropped != 1 || got.Load() != 2 {
		t.Fatalf("stats %+v, delivered %d: want the stranger's packet dropped and 2 delivered", st, got.Load())
	}
	if st.PacketsSent != 2 || st.OctetsSent != 2*FrameSamples {
		t.Fatalf("sent %d packets %d octets, want 2 and %d", st.PacketsSent, st.OctetsSent, 2*FrameSamples)
	}

	// A re-INVITE that moves the caller's media: the new SDP address wins
	// until the caller's RTP latches again.
	tr.SetRemote(addrOf(stranger), netip.AddrPortFrom(loopback, addrOf(stranger).Port()+1))
	if err := tr.WriteRTP(packet(3, 480)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRTP(t, stranger, 2*time.Second); err != nil || p.SequenceNumber != 3 {
		t.Fatalf("after SetRemote: %v %v, want packet 3", p, err)
	}
}

func TestTransportHoldDiscards(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := peer(t)
	tr.SetRemote(addrOf(c), addrOf(c))
	tr.SetSending(false)
	if err := tr.WriteRTP(packet(1, 0)); err != nil {
		t.Fatal(err)
	}
	tr.SetSending(true)
	if err := tr.WriteRTP(packet(2, 160)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRTP(t, c, 2*time.Second); err != nil || p.SequenceNumber != 2 {
		t.Fatalf("got %v %v, want only packet 2 (1 was sent on hold)", p, err)
	}
	if st := tr.Stats(); st.PacketsSent != 1 || st.PacketsHeld != 1 {
		t.Fatalf("sent %d held %d, want 1 and 1", st.PacketsSent, st.PacketsHeld)
	}
}

func TestTransportErrors(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteRTP(packet(1, 0)); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("before SetRemote: %v, want ErrNoRemote", err)
	}
	c := peer(t)
	tr.SetRemote(addrOf(c), addrOf(c))
	tr.Close()
	if err := tr.WriteRTP(packet(1, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if !errors.Is(tr.Err(), ErrClosed) {
		t.Fatalf("Err %v, want ErrClosed", tr.Err())
	}
}

// TestTransportSenderReports: the caller gets RTCP sender reports on the
// RTCP address whose counts match what was sent.
func TestTransportSenderReports(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback, ReportInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rtpPeer, rtcpPeer := peer(t), peer(t)
	tr.SetRemote(addrOf(rtpPeer), addrOf(rtcpPeer))
	for i := range 10 {
		if err := tr.WriteRTP(packet(uint16(i), uint32(i*160))); err != nil {
			t.Fatal(err)
		}
	}
	tr.Start(nil)
	buf := make([]byte, 1500)
	_ = rtcpPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := rtcpPeer.Read(buf)
	if err != nil {
		t.Fatalf("no sender report: %v", err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok {
		t.Fatalf("got %T, want a sender report", pkts[0])
	}
	if sr.SSRC != 0x1234 || sr.PacketCount != 10 || sr.OctetCount != 10*FrameSamples {
		t.Fatalf("SR %+v: want SSRC 0x1234, 10 packets, %d octets", sr, 10*FrameSamples)
	}
	if sr.RTPTime < 9*160 {
		t.Fatalf("SR RTP time %d before the last packet's 1440", sr.RTPTime)
	}
	ntpSec := int64(sr.NTPTime>>32) - ntpEpochOffset
	if d := time.Since(time.Unix(ntpSec, 0)); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("SR NTP time %v off by %v", time.Unix(ntpSec, 0), d)
	}
}

// TestTransportInactivity: silence from the caller ends the transport with
// ErrRTPTimeout; while the caller said it sends nothing, it does not.
func TestTransportInactivity(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback, Timeout: 80 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Start(nil)
	select {
	case <-tr.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no timeout")
	}
	if !errors.Is(tr.Err(), ErrRTPTimeout) {
		t.Fatalf("Err %v, want ErrRTPTimeout", tr.Err())
	}

	held, err := Listen(Config{LocalIP: loopback, Timeout: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.ExpectRTP(false)
	held.Start(nil)
	// 10 timeouts' worth with the caller on hold: still up.
	select {
	case <-held.Done():
		t.Fatalf("ended on hold: %v", held.Err())
	case <-time.After(400 * time.Millisecond):
	}
}

func TestWriteRTPAllocs(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := peer(t)
	tr.SetRemote(addrOf(c), addrOf(c))
	p := packet(0, 0)
	allocs := testing.AllocsPerRun(200, func() {
		p.SequenceNumber++
		p.Timestamp += 160
		if err := tr.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("WriteRTP allocates %v per packet, want 0", allocs)
	}
}

func BenchmarkWriteRTP(b *testing.B) {
	tr, err := Listen(Config{LocalIP: loopback})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tr.SetRemote(addrOf(c), addrOf(c))
	p := packet(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		p.SequenceNumber++
		_ = tr.WriteRTP(p)
	}
}

// TestTransportAllowSources: RTP from an IP outside the allowed ones
// neither latches nor reaches the sink.
func TestTransportAllowSources(t *testing.T) {
	tr, err := Listen(Config{LocalIP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	sdpAddr := peer(t)
	tr.SetRemote(addrOf(sdpAddr), addrOf(sdpAddr))
	tr.AllowSources(netip.MustParseAddr("192.0.2.1")) // not loopback
	var got atomic.Uint64
	tr.Start(func(*rtp.Packet) { got.Add(1) })
	send(t, peer(t), netip.AddrPortFrom(loopback, uint16(tr.LocalPort())), packet(1, 0))
	for tr.Stats().PacketsDropped == 0 {
		time.Sleep(time.Millisecond)
	}
	if got.Load() != 0 || tr.Remote() != addrOf(sdpAddr) {
		t.Fatalf("a stranger's packet: delivered %d, remote %v", got.Load(), tr.Remote())
	}
	tr.AllowSources(loopback)
	send(t, peer(t), netip.AddrPortFrom(loopback, uint16(tr.LocalPort())), packet(2, 160))
	for tr.Stats().PacketsReceived == 0 {
		time.Sleep(time.Millisecond)
	}
	if got.Load() != 1 {
		t.Fatalf("an allowed packet: delivered %d", got.Load())
	}
}
