package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
)

// needSIPp skips when SIPp (Debian package sip-tester) is missing.
func needSIPp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp not installed (Debian package sip-tester; make test installs it)")
	}
}

// freePort is a port free for both UDP and TCP on loopback right now, with
// the next three free too (SIPp's media port is port+2). It is picked
// below the kernel's ephemeral range (32768 and up by default), so the
// server's own ephemeral RTP ports cannot take it before SIPp binds.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + 4*rand.IntN(3000) // 20000..31996
		ok := true
		var ls []interface{ Close() error }
		for p := port; p < port+4 && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, c)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// testServer starts a Server on loopback over network ("udp" or "tcp").
func testServer(t testing.TB, network string, bot *testBot, tweak func(*Config)) (*Server, *plainrtp.PortPool) {
	t.Helper()
	pool := plainrtp.NewPortPool(0, 0)
	cfg := Config{
		Listen:       []ListenAddr{{Network: network, Addr: "127.0.0.1:0"}},
		MediaIP:      netip.MustParseAddr("127.0.0.1"),
		Ports:        pool,
		RTCPInterval: 200 * time.Millisecond,
		Logger:       testLogger(),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg, bot)
	if err != nil {
		t.Fatal(err)
	}
	bot.srv.Store(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, pool
}

// sippRun runs one SIPp scenario from testdata against srv and returns
// its exit error and output. SIPp exits 0 only when every call followed
// the scenario (every check_it regexp matched, nothing unexpected came).
func sippRun(t *testing.T, srv *Server, scenario string, args ...string) (string, error) {
	t.Helper()
	cmd, out, dir := sippCmdIn(t, srv, scenario, args...)
	err := cmd.Run()
	errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
	return out.String() + string(errs), err
}

// sippCmd is a SIPp command for scenario against srv, not started.
func sippCmd(t *testing.T, srv *Server, scenario string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, out, _ := sippCmdIn(t, srv, scenario, args...)
	return cmd, out
}

// sippCmdIn also returns the directory SIPp runs and writes its logs in.
func sippCmdIn(t *testing.T, srv *Server, scenario string, args ...string) (*exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	addr := srv.Addrs()[0]
	tp := "u1"
	if addr.Network == "tcp" {
		tp = "t1"
	}
	dir := t.TempDir()
	port := freePort(t)
	all := []string{
		"-sf", scenarioPath(t, scenario),
		"-t", tp, "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-mp", fmt.Sprint(port + 2),
		"-m", "1", "-timeout", "30s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
	}
	all = append(all, args...)
	all = append(all, addr.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "sipp", all...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "messages.log"))
			t.Logf("SIPp messages of %s:\n%s", scenario, tail(string(b), 6000))
		}
	})
	return cmd, &out, dir
}

func scenarioPath(t *testing.T, name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testLogger logs to stderr with SIP_TEST_LOG=1, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("SIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// checkClean asserts the server let go of every call and port.
func checkClean(t testing.TB, srv *Server, pool *plainrtp.PortPool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Calls() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Calls(); n != 0 {
		t.Errorf("%d calls still registered", n)
	}
	if n := pool.InUse(); n != 0 {
		t.Errorf("%d RTP port pairs still in use", n)
	}
}

var networks = []string{"udp", "tcp"}

// TestSIPpCallerHangsUp: INVITE → 100 → 200 (PCMU + telephone-event,
// sendrecv) → ACK → media both ways → the caller's BYE.
func TestSIPpCallerHangsUp(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			srv, pool := testServer(t, network, bot, nil)
			if out, err := sippRun(t, srv, "call", "-rtp_echo"); err != nil {
				t.Fatalf("sipp: %v\n%s", err, out)
			}
			bc := bot.nextCall(t)
			if cause := bc.endCause(t); !errors.Is(cause, ErrHangup) {
				t.Fatalf("cause %v, want ErrHangup", cause)
			}
			if bc.c.From == "" || !strings.Contains(bc.c.To, "bot@") || bc.c.CallID == "" {
				t.Errorf("call info from=%q to=%q call-id=%q", bc.c.From, bc.c.To, bc.c.CallID)
			}
			// 1.5 s of tone went out; SIPp echoed it back unchanged.
			st := bc.c.Transport.Stats()
			if bc.echoed.Load() == 0 || bc.corrupt.Load() != 0 {
				t.Errorf("echoed %d (corrupt %d) of %d sent", bc.echoed.Load(), bc.corrupt.Load(), st.PacketsSent)
			}
			if st.ReportsSent == 0 {
				t.Errorf("no RTCP sender report in 1.5 s at a 200 ms interval: %+v", st)
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpBridgeHangsUp: the bot hangs up (Server.Hangup, the bridge's
// DELETE) and SIPp gets the BYE.
func TestSIPpBridgeHangsUp(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			bot.hangupAfter = 10
			srv, pool := testServer(t, network, bot, nil)
			if out, err := sippRun(t, srv, "bye_in", "-rtp_echo"); err != nil {
				t.Fatalf("sipp: %v\n%s", err, out)
			}
			bc := bot.nextCall(t)
			if cause := bc.endCause(t); !errors.Is(cause, ErrLocalHangup) {
				t.Fatalf("cause %v, want ErrLocalHangup", cause)
			}
			if err := srv.Hangup(bc.c.CallID); !errors.Is(err, ErrCallNotFound) {
				t.Errorf("Hangup of an ended call: %v, want ErrCallNotFound", err)
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpRTPTimeout: a caller that sends no RTP is hung up (BYE) after
// the inactivity timeout.
func TestSIPpRTPTimeout(t *testing.T) {
	needSIPp(t)
	bot := newTestBot(t)
	srv, pool := testServer(t, "udp", bot, func(c *Config) { c.RTPTimeout = 300 * time.Millisecond })
	if out, err := sippRun(t, srv, "bye_in"); err != nil { // no -rtp_echo: silence
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	bc := bot.nextCall(t)
	if cause := bc.endCause(t); !errors.Is(cause, plainrtp.ErrRTPTimeout) {
		t.Fatalf("cause %v, want ErrRTPTimeout", cause)
	}
	checkClean(t, srv, pool)
}

// TestSIPpNoACK: a caller that never ACKs the 200 is hung up with BYE
// after the ACK timeout (32 s by default; 400 ms here).
func TestSIPpNoACK(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			srv, pool := testServer(t, network, bot, func(c *Config) { c.ACKTimeout = 400 * time.Millisecond })
			if out, err := sippRun(t, srv, "no_ack"); err != nil {
				t.Fatalf("sipp: %v\n%s", err, out)
			}
			bc := bot.nextCall(t)
			if cause := bc.endCause(t); !errors.Is(cause, ErrNoACK) {
				t.Fatalf("cause %v, want ErrNoACK", cause)
			}
			select {
			case <-bc.started:
				t.Error("Started without an ACK")
			default:
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpCancel: CANCEL before the answer: 200 to the CANCEL, 487 to the
// INVITE, and Accept's ctx is done.
func TestSIPpCancel(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			bot.block = true
			srv, pool := testServer(t, network, bot, nil)
			if out, err := sippRun(t, srv, "cancel"); err != nil {
				t.Fatalf("sipp: %v\n%s", err, out)
			}
			select {
			case err := <-bot.acceptCh:
				if err == nil {
					t.Fatal("Accept's ctx ended without a cause")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Accept's ctx not done after CANCEL")
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpAnswerTimeout: a bot that does not take the call in time: 503.
func TestSIPpAnswerTimeout(t *testing.T) {
	needSIPp(t)
	bot := newTestBot(t)
	bot.block = true
	srv, pool := testServer(t, "udp", bot, func(c *Config) { c.AnswerTimeout = 300 * time.Millisecond })
	if out, err := sippRun(t, srv, "busy"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	if err := <-bot.acceptCh; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Accept ctx cause %v, want ErrUnavailable", err)
	}
	checkClean(t, srv, pool)
}

// TestSIPpNotAcceptable: an offer with no common codec, or no audio: 488.
func TestSIPpNotAcceptable(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			srv, pool := testServer(t, network, bot, nil)
			for _, sc := range []string{"no_codec", "no_audio"} {
				if out, err := sippRun(t, srv, sc); err != nil {
					t.Fatalf("sipp %s: %v\n%s", sc, err, out)
				}
			}
			if n := len(bot.acceptCh); n != 0 {
				t.Errorf("Accept called %d times for unacceptable offers", n)
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpOptions: OPTIONS gets 200 with Allow and Accept.
func TestSIPpOptions(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			srv, _ := testServer(t, network, newTestBot(t), nil)
			if out, err := sippRun(t, srv, "options"); err != nil {
				t.Fatalf("sipp: %v\n%s", err, out)
			}
		})
	}
}

// TestSIPpHold: re-INVITE sendonly is answered recvonly and the bridge
// stops sending; re-INVITE sendrecv resumes.
func TestSIPpHold(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			srv, pool := testServer(t, network, bot, nil)
			if out, err := sippRun(t, srv, "hold", "-rtp_echo"); err != nil {
				t.Fatalf("sipp: %v\n%s", err, out)
			}
			bc := bot.nextCall(t)
			if cause := bc.endCause(t); !errors.Is(cause, ErrHangup) {
				t.Fatalf("cause %v, want ErrHangup", cause)
			}
			st := bc.c.Transport.Stats()
			// 500 ms on hold: about 25 frames held back, the rest sent.
			if st.PacketsHeld == 0 || st.PacketsSent == 0 {
				t.Errorf("sent %d held %d: want both", st.PacketsSent, st.PacketsHeld)
			}
			if m := bc.c.Media(); m.Offered != SendRecv || m.Hold() {
				t.Errorf("after unhold: %+v", m)
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpFlood: INVITEs beyond capacity get 503 while the calls in
// progress go on; afterwards nothing is left.
func TestSIPpFlood(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			bot.capacity = 2
			srv, pool := testServer(t, network, bot, nil)
			// Two calls that stay up for 1.5 s fill the capacity.
			busy, out := sippCmd(t, srv, "call", "-m", "2", "-l", "2", "-r", "10")
			if err := busy.Start(); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				select {
				case <-bot.calls:
				case <-time.After(20 * time.Second):
					busy.Process.Kill()
					busy.Wait()
					t.Fatalf("the two calls did not come up:\n%s", out)
				}
			}
			if out, err := sippRun(t, srv, "busy", "-m", "20", "-r", "200", "-l", "20"); err != nil {
				t.Fatalf("flood: %v\n%s", err, out)
			}
			if err := busy.Wait(); err != nil {
				t.Fatalf("the calls in progress: %v\n%s", err, out)
			}
			checkClean(t, srv, pool)
		})
	}
}

// TestSIPpHangupWhilePending: the bridge hangs up a call whose bot has not
// taken it yet (DELETE before the answer): 503, and Accept's ctx says why.
func TestSIPpHangupWhilePending(t *testing.T) {
	needSIPp(t)
	bot := newTestBot(t)
	bot.block = true
	srv, pool := testServer(t, "udp", bot, nil)
	go func() {
		c := <-bot.pending
		if err := srv.Hangup(c.CallID); err != nil {
			t.Errorf("Hangup: %v", err)
		}
	}()
	if out, err := sippRun(t, srv, "busy"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	if err := <-bot.acceptCh; !errors.Is(err, ErrLocalHangup) {
		t.Fatalf("Accept ctx cause %v, want ErrLocalHangup", err)
	}
	checkClean(t, srv, pool)
}

// TestSIPpShutdownSendsBye: Shutdown sends BYE to every call and waits for
// them; new INVITEs meanwhile would get 503.
func TestSIPpShutdownSendsBye(t *testing.T) {
	needSIPp(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			bot := newTestBot(t)
			srv, pool := testServer(t, network, bot, nil)
			cmd, out := sippCmd(t, srv, "bye_in", "-m", "2", "-l", "2", "-rtp_echo")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			a, b := bot.nextCall(t), bot.nextCall(t)
			<-a.started
			<-b.started
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			for _, bc := range []*botCall{a, b} {
				if cause := bc.endCause(t); !errors.Is(cause, ErrShutdown) {
					t.Errorf("cause %v, want ErrShutdown", cause)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("sipp did not get both BYEs: %v\n%s", err, out)
			}
			checkClean(t, srv, pool)
		})
	}
}

func TestShutdownTwice(t *testing.T) {
	srv, _ := testServer(t, "udp", newTestBot(t), nil) // Cleanup shuts down again
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
