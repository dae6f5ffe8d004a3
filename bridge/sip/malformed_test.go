package sip

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// rawUDP sends msg to srv and returns the first response line, or "" if
// none came within wait.
func rawUDP(t *testing.T, c *net.UDPConn, to string, msg string, wait time.Duration) string {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDP([]byte(msg), addr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, err := c.Read(buf)
		if err != nil {
			return ""
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		if strings.HasPrefix(line, "SIP/2.0 1") { // provisional: wait for the final one
			continue
		}
		return line
	}
}

// request builds a SIP request from c's address; hdrs replace defaults
// whose name they start with ("CSeq:" → drop by passing "CSeq:" alone).
func request(c *net.UDPConn, method, body, contentType string, drop ...string) string {
	local := c.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK%d", time.Now().UnixNano())
	hdrs := []string{
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch,
		"From: <sip:caller@" + local + ">;tag=raw1",
		"To: <sip:bot@127.0.0.1>",
		"Call-ID: raw-" + branch,
		"CSeq: 1 " + method,
		"Contact: <sip:caller@" + local + ">",
		"Max-Forwards: 70",
	}
	if contentType != "" {
		hdrs = append(hdrs, "Content-Type: "+contentType)
	}
	var kept []string
	for _, h := range hdrs {
		keep := true
		for _, d := range drop {
			if strings.HasPrefix(h, d) {
				keep = false
			}
		}
		if keep {
			kept = append(kept, h)
		}
	}
	return method + " sip:bot@127.0.0.1 SIP/2.0\r\n" + strings.Join(kept, "\r\n") +
		fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
}

// TestMalformed: bad input gets the RFC answer (or, unparsable, none) and
// the server keeps serving.
func TestMalformed(t *testing.T) {
	bot := newTestBot(t)
	srv, pool := testServer(t, "udp", bot, nil)
	to := srv.Addrs()[0].Addr
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sdpNoAudio = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n"
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"garbage is dropped", "hello there\r\n\r\n", ""},
		{"no CSeq", request(c, "INVITE", "", "", "CSeq:"), "SIP/2.0 400"},
		{"SDP that does not parse", request(c, "INVITE", "this is not SDP", "application/sdp"), "SIP/2.0 400"},
		{"no SDP offer", request(c, "INVITE", "", ""), "SIP/2.0 488"},
		{"SDP without audio", request(c, "INVITE", sdpNoAudio, "application/sdp"), "SIP/2.0 488"},
		{"no Contact", request(c, "INVITE", strings.Replace(sdpNoAudio, "video 4000 RTP/AVP 96", "audio 4000 RTP/AVP 0", 1), "application/sdp", "Contact:"), "SIP/2.0 400"},
		{"BYE outside a dialog", request(c, "BYE", "", ""), "SIP/2.0 481"},
		{"CANCEL matching nothing", request(c, "CANCEL", "", ""), "SIP/2.0 481"},
		{"alive: OPTIONS", request(c, "OPTIONS", "", ""), "SIP/2.0 200"},
	} {
		wait := 2 * time.Second
		if tc.want == "" {
			wait = 300 * time.Millisecond
		}
		if got := rawUDP(t, c, to, tc.msg, wait); !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := len(bot.acceptCh); n != 0 {
		t.Errorf("Accept called %d times", n)
	}
	checkClean(t, srv, pool)
}

func TestParseListen(t *testing.T) {
	got, err := ParseListen("udp:127.0.0.1:5060, tcp:0.0.0.0:5061,127.0.0.1:5070")
	if err != nil {
		t.Fatal(err)
	}
	want := []ListenAddr{{"udp", "127.0.0.1:5060"}, {"tcp", "0.0.0.0:5061"}, {"udp", "127.0.0.1:5070"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if l, err := ParseListen(""); err != nil || l != nil {
		t.Fatalf("empty: %v %v", l, err)
	}
	for _, bad := range []string{"tls:127.0.0.1:5061", "udp:127.0.0.1", "udp:example.com:5060", "udp:127.0.0.1:x"} {
		if _, err := ParseListen(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
