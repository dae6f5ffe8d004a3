package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunAnswersSIP: -sip-listen and -bot-url start the SIP front door with
// the server; it answers OPTIONS on the logged address, and the command's
// shutdown (the test's end, as SIGTERM) stops it cleanly.
func TestRunAnswersSIP(t *testing.T) {
	addr := startRunMatch(t, regexp.MustCompile(`sip listening.*addrs=\[udp:([0-9.:]+)\]`),
		"-listen", "127.0.0.1:0", "-sip-listen", "udp:127.0.0.1:0", "-bot-url", "ws://127.0.0.1:9/bot?token=s3cret")
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKopt1;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:%s>\r\nCall-ID: opt-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", addr, local, addr)
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Fatalf("OPTIONS answered:\n%s", buf[:n])
	}
}
