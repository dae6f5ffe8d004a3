package bridge

import (
	"context"
	"fmt"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge/sip/siptest"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// TestSIPBaresipCallsTheBot: baresip (Debian's SIP user agent; aubridge as
// its sound card, sndfile recording what it decodes) calls the bridge,
// which dials a real bot WebSocket. The bot speaks 3 s of 440 Hz test-tone
// words; baresip presses 1 5 9 # (RFC 4733) and hangs up. The recording
// must hold the speech without gaps at 440 Hz; the bot must get the four
// digits as dtmf events and "closed" with reason hangup.
func TestSIPBaresipCallsTheBot(t *testing.T) {
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Skip("baresip not installed (Debian package baresip-core)")
	}
	_, bots, addr := sipBridge(t, func(c *Config) { c.Voice = ttsserver.TestTonesVoice })
	dir := t.TempDir()
	ports := freeUDPPorts(t, 4) // SIP, (TLS), RTP, RTCP
	ctrlPort := freeUDPPorts(t, 1)[0]
	siptest.WriteBaresipConfig(t, dir, ports[0], ports[2], ports[3], ctrlPort)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "baresip", "-f", dir, "-t", "6", "-e", "/dial sip:bot@"+addr)
	cmd.Dir = dir
	var outBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bot := bots.next(t)
	words := strings.TrimSpace(strings.Repeat("440 ", 15)) // 15 × 200 ms
	bot.send(t, map[string]any{"type": "text", "text": words + " ", "flush": true})
	bot.expect(t, "speaking")

	ctrl := siptest.SendDigits(t, ctrlPort, "159#")
	var digits string
	for len(digits) < 4 {
		ev := bot.expect(t, "dtmf")
		d, _ := ev["digit"].(string)
		digits += d
	}
	if digits != "159#" {
		t.Errorf("dtmf from baresip: %q, want 159#", digits)
	}
	if ev := bot.expect(t, "closed"); ev["reason"] != "hangup" {
		t.Errorf("closed: %v", ev)
	}
	if err := cmd.Wait(); err != nil && ctx.Err() != nil {
		t.Fatalf("baresip: %v\n%s", err, outBuf.String())
	}
	_ = ctrl.Close()

	files, _ := filepath.Glob(filepath.Join(dir, "dump-*-dec.wav"))
	if len(files) != 1 {
		t.Fatalf("recordings %v, want one *-dec.wav\n%s", files, outBuf.String())
	}
	rate, pcm := siptest.ReadWAV(t, files[0])
	tone := siptest.FindTone(pcm, rate)
	if tone.Silent {
		t.Fatalf("baresip heard silence\n%s", outBuf.String())
	}
	t.Logf("baresip heard %.2f s of speech, %d silent frames inside, %.0f Hz", tone.Secs, tone.Gaps, tone.Hz)
	if tone.Secs < 2.8 || tone.Gaps != 0 || math.Abs(tone.Hz-440) > 20 {
		t.Fatalf("heard %.2f s (want 3) with %d gaps at %.0f Hz (want 440)", tone.Secs, tone.Gaps, tone.Hz)
	}
}

// freeUDPPorts are n consecutive loopback ports free for UDP and TCP now,
// below the kernel's ephemeral range so the bridge's own ports cannot take
// them first.
func freeUDPPorts(t *testing.T, n int) []int {
	t.Helper()
	for base := 21000 + 4*int(time.Now().UnixNano()%2000); base < 30000; base += 4 {
		var closers []interface{ Close() error }
		ok := true
		for p := base; p < base+n && ok; p++ {
			u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, u)
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, l)
		}
		for _, c := range closers {
			_ = c.Close()
		}
		if ok {
			out := make([]int, n)
			for i := range out {
				out[i] = base + i
			}
			return out
		}
	}
	t.Fatal("no free ports")
	return nil
}
