package bridge

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSIPKamailioSpreadsCalls runs Debian's Kamailio with the fleet's
// committed config (cmd/voicebridge/fleet/kamailio.cfg, dispatcher
// round robin) on loopback in front of two bridge nodes with SIP
// listeners, and sends calls through it: they spread over both nodes, and
// each is a whole call (the node's bot is dialed, ACK and BYE reach it).
func TestSIPKamailioSpreadsCalls(t *testing.T) {
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/kamailio"); err != nil {
			t.Skip("kamailio is not installed (Debian package kamailio)")
		}
	}
	cfg, err := filepath.Abs("../cmd/voicebridge/fleet/kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		b    *testBridge
		bots *sipBotServer
		addr string
	}
	var nodes [2]node
	dir := t.TempDir()
	var list bytes.Buffer
	list.WriteString("# two voicebridge nodes on loopback\n")
	for i := range nodes {
		b, bots, addr := sipBridge(t, nil)
		nodes[i] = node{b, bots, addr}
		list.WriteString("1 sip:" + addr + "\n")
	}
	listPath := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listPath, list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A free loopback UDP port for Kamailio.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kport := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	kaddr := "127.0.0.1:" + strconv.Itoa(kport)

	var out bytes.Buffer
	cmd := exec.Command(bin, "-DD", "-E", "-f", cfg, "-Y", dir, "-w", dir,
		"-A", `DISPATCHER_LIST="`+listPath+`"`, "-A", "SIP_LISTEN=udp:"+kaddr)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // Kamailio and the children it forked
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(stop)

	// Wait until Kamailio answers OPTIONS (it is up).
	probe := newUAC(t, kaddr)
	up := false
	for range 100 {
		probe.cseq++
		probe.request("OPTIONS", probe.cseq, "")
		select {
		case m := <-probe.msgs:
			if statusRe.MatchString(m) {
				up = true
			}
		case <-time.After(100 * time.Millisecond):
		}
		if up {
			break
		}
	}
	if !up {
		stop()
		t.Fatalf("kamailio did not come up:\n%s", out.String())
	}

	const calls = 6
	var per [2]int // calls whose bot each node dialed
	for i := range calls {
		u := newUAC(t, kaddr)
		u.direct = true
		if code, m := u.invite(); code != 200 {
			stop()
			t.Fatalf("call %d through kamailio answered %d:\n%s\nkamailio:\n%s", i, code, m, out.String())
		}
		var bot *sipBot
		n := 0
		select {
		case bot = <-nodes[0].bots.conns:
		case bot = <-nodes[1].bots.conns:
			n = 1
		case <-time.After(waitTimeout):
			t.Fatal("no node dialed its bot")
		}
		per[n]++
		// The ACK reached the node: its pacer runs ("connected").
		id := bot.query.Get("call_id")
		deadline := time.Now().Add(waitTimeout)
		for st := ""; st != "connected"; {
			st = nodes[n].b.sipInfo(t, id).State
			if st == "closed" || time.Now().After(deadline) {
				t.Fatalf("call %d: state %q, want connected", i, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
		u.bye()
		if ev := bot.expect(t, "closed"); ev["reason"] != "hangup" {
			t.Fatalf("closed: %v", ev)
		}
	}
	t.Logf("calls per node through kamailio: %v", per)
	if per[0]+per[1] != calls || per[0] == 0 || per[1] == 0 {
		t.Fatalf("calls per node %v: want %d spread over both", per, calls)
	}
}
