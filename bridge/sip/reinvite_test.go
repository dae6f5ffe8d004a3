package sip

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	siplib "github.com/emiago/sipgo/sip"
)

// rawDialog is a hand-driven UAC over UDP, for what SIPp cannot show:
// whether a re-INVITE's 200 OK is retransmitted until its ACK.
type rawDialog struct {
	t      testing.TB
	c      *net.UDPConn
	to     *net.UDPAddr
	callID string
	toTag  string
	// rejected: the INVITE got a final non-2xx answer, whose ACK belongs
	// to the INVITE's transaction (same branch, RFC 3261 §17.1.1.3).
	rejected bool
}

func (d *rawDialog) send(method string, cseq int, body string) {
	d.t.Helper()
	local := d.c.LocalAddr().String()
	branchMethod := method
	if method == "ACK" && d.rejected {
		branchMethod = "INVITE"
	}
	to := "<sip:bot@127.0.0.1>"
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	msg := fmt.Sprintf("%s sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s%d%s\r\n"+
		"From: <sip:caller@%s>;tag=raw\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:caller@%s>\r\nMax-Forwards: 70\r\n",
		method, d.to, local, d.callID, cseq, branchMethod, local, to, d.callID, cseq, method, local)
	if body != "" {
		msg += "Content-Type: application/sdp\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := d.c.WriteToUDP([]byte(msg), d.to); err != nil {
		d.t.Fatal(err)
	}
}

// next returns the next response (skipping requests), or nil after wait.
func (d *rawDialog) next(wait time.Duration) *siplib.Response {
	d.t.Helper()
	buf := make([]byte, 8192)
	deadline := time.Now().Add(wait)
	for {
		_ = d.c.SetReadDeadline(deadline)
		n, err := d.c.Read(buf)
		if err != nil {
			return nil
		}
		m, err := siplib.ParseMessage(buf[:n])
		if err != nil {
			d.t.Fatalf("unparsable message from the server: %v", err)
		}
		if res, ok := m.(*siplib.Response); ok {
			return res
		}
	}
}

// final waits for a final response to cseq.
func (d *rawDialog) final(cseq uint32) *siplib.Response {
	d.t.Helper()
	for {
		res := d.next(5 * time.Second)
		if res == nil {
			d.t.Fatalf("no final response to CSeq %d", cseq)
		}
		if res.StatusCode >= 200 && res.CSeq().SeqNo == cseq && res.CallID().Value() == d.callID {
			return res
		}
	}
}

// TestReinviteHoldMoveRetransmit: re-INVITE inactive is answered inactive
// and its 200 OK is retransmitted until the ACK, and no longer; a re-INVITE
// to a new port moves the bot's RTP there.
func TestReinviteHoldMoveRetransmit(t *testing.T) {
	bot := newTestBot(t)
	srv, pool := testServer(t, "udp", bot, nil)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to, _ := net.ResolveUDPAddr("udp", srv.Addrs()[0].Addr)
	d := &rawDialog{t: t, c: c, to: to, callID: fmt.Sprintf("reinv-%d", time.Now().UnixNano())}
	port := 4000
	sdp := func(dir string) string {
		return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=%s\r\n", port, dir)
	}

	d.send("INVITE", 1, sdp("sendrecv"))
	ok := d.final(1)
	if ok.StatusCode != 200 {
		t.Fatalf("INVITE: %d", ok.StatusCode)
	}
	d.toTag, _ = ok.To().Params.Get("tag")
	d.send("ACK", 1, "")
	bc := bot.nextCall(t)
	<-bc.started

	d.send("INVITE", 2, sdp("inactive"))
	ok = d.final(2)
	if ok.StatusCode != 200 || !strings.Contains(string(ok.Body()), "a=inactive") {
		t.Fatalf("re-INVITE inactive: %d\n%s", ok.StatusCode, ok.Body())
	}
	// No ACK yet: the 200 comes again (first after T1 = 500 ms).
	if again := d.final(2); again.StatusCode != 200 {
		t.Fatalf("retransmission: %d", again.StatusCode)
	}
	d.send("ACK", 2, "")
	// The next retransmission was due 1 s after the one we answered: none
	// may come now.
	if res := d.next(2 * time.Second); res != nil {
		t.Fatalf("got %d for CSeq %d after the ACK: still retransmitting", res.StatusCode, res.CSeq().SeqNo)
	}
	if m := bc.c.Media(); m.Offered != Inactive || !m.Hold() {
		t.Fatalf("after re-INVITE inactive: %+v", m)
	}

	// Unhold to a new address: the tone arrives there (on the wire).
	media, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	port = media.LocalAddr().(*net.UDPAddr).Port
	d.send("INVITE", 3, sdp("sendrecv"))
	if ok = d.final(3); ok.StatusCode != 200 || !strings.Contains(string(ok.Body()), "a=sendrecv") {
		t.Fatalf("re-INVITE unhold: %d\n%s", ok.StatusCode, ok.Body())
	}
	d.send("ACK", 3, "")
	buf := make([]byte, 1500)
	_ = media.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := media.Read(buf)
	if err != nil {
		t.Fatalf("no RTP at the new address: %v", err)
	}
	if n != 12+160 || buf[1]&0x7f != 0 {
		t.Fatalf("got %d bytes PT %d at the new address, want a 20 ms PCMU packet", n, buf[1]&0x7f)
	}

	d.send("BYE", 4, "")
	if res := d.final(4); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	if cause := bc.endCause(t); !errors.Is(cause, ErrHangup) {
		t.Fatalf("cause %v", cause)
	}
	checkClean(t, srv, pool)
}

// TestForcedCodec: Config.Codec picks the codec whatever the offer's
// order, and an offer without it gets 488.
func TestForcedCodec(t *testing.T) {
	bot := newTestBot(t)
	srv, pool := testServer(t, "udp", bot, func(c *Config) { c.Codec = "pcma" })
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to, _ := net.ResolveUDPAddr("udp", srv.Addrs()[0].Addr)
	offer := func(formats string) string {
		return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP " + formats + "\r\n"
	}

	d := &rawDialog{t: t, c: c, to: to, callID: fmt.Sprintf("forced-a-%d", time.Now().UnixNano())}
	d.send("INVITE", 1, offer("0"))
	if res := d.final(1); res.StatusCode != 488 {
		t.Fatalf("PCMU-only offer with pcma forced: %d, want 488", res.StatusCode)
	}
	d.rejected = true
	d.send("ACK", 1, "")
	if res := d.next(1500 * time.Millisecond); res != nil {
		t.Fatalf("the 488 is retransmitted after its ACK: %d", res.StatusCode)
	}

	d = &rawDialog{t: t, c: c, to: to, callID: fmt.Sprintf("forced-b-%d", time.Now().UnixNano())}
	d.send("INVITE", 1, offer("0 8"))
	res := d.final(1)
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "m=audio ") ||
		!strings.Contains(string(res.Body()), " RTP/AVP 8\r\n") {
		t.Fatalf("offer 0 8 with pcma forced: %d\n%s", res.StatusCode, res.Body())
	}
	d.toTag, _ = res.To().Params.Get("tag")
	d.send("ACK", 1, "")
	bc := bot.nextCall(t)
	d.send("BYE", 2, "")
	d.final(2)
	bc.endCause(t)
	checkClean(t, srv, pool)
}
