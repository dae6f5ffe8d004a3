package sip

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRejectNeverACKed: a caller that never ACKs the 503 of a refused
// INVITE does not hold the call's registration or Shutdown (sipgo's
// dialog Respond would wait for that ACK until Timer H, 32 s): the call is
// gone at once, and Shutdown returns well within its 5 s bound.
func TestRejectNeverACKed(t *testing.T) {
	bot := newTestBot(t)
	bot.capacity = 1
	bot.active.Store(1) // at capacity: every INVITE is refused with 503
	srv, pool := testServer(t, "udp", bot, nil)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	for range 3 {
		if got := rawUDP(t, c, srv.Addrs()[0].Addr, request(c, "INVITE", sdp, "application/sdp"), 2*time.Second); !strings.HasPrefix(got, "SIP/2.0 503") {
			t.Fatalf("INVITE at capacity: %q, want 503", got)
		}
	}
	checkClean(t, srv, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with three 503s never ACKed: %v", err)
	}
}
