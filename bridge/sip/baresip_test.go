package sip

import (
	"context"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge/sip/siptest"
)

// TestBaresipHearsTheBot: baresip (Debian's SIP user agent, no sound card:
// aubridge as its audio device, sndfile dumping what it decodes to WAV)
// calls the server, which answers PCMU and plays a 440 Hz tone; baresip
// hangs up after a few seconds. The recording must hold the tone: energy
// in every 20 ms from its first to its last sounding frame (no gaps) and a
// 440 Hz zero-crossing rate.
func TestBaresipHearsTheBot(t *testing.T) {
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Skip("baresip not installed (make test installs it)")
	}
	bot := newTestBot(t)
	srv, pool := testServer(t, "udp", bot, nil)
	dir := t.TempDir()
	port := freePort(t) // SIP (baresip also takes port+1 for TLS); RTP on port+2, +3
	ctrlPort := freePort(t)
	siptest.WriteBaresipConfig(t, dir, port, port+2, port+3, ctrlPort)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := "sip:bot@" + srv.Addrs()[0].Addr
	cmd := exec.CommandContext(ctx, "baresip", "-f", dir, "-t", "4", "-e", "/dial "+target)
	cmd.Dir = dir
	var outBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bc := bot.nextCall(t)
	select {
	case <-bc.started:
	case <-time.After(10 * time.Second):
		t.Fatal("call not started")
	}
	// Press keys through baresip's control socket (a netstring of JSON).
	time.Sleep(300 * time.Millisecond) // let baresip's audio stream settle
	ctrl := siptest.SendDigits(t, ctrlPort, "159#")
	if err := cmd.Wait(); err != nil && ctx.Err() != nil {
		t.Fatalf("baresip: %v\n%s", err, outBuf.String())
	}
	ctrl.Close()
	out := outBuf.String()
	if cause := bc.endCause(t); !errors.Is(cause, ErrHangup) {
		t.Fatalf("cause %v, want ErrHangup (baresip quit)\n%s", cause, out)
	}
	checkClean(t, srv, pool)
	if string(bc.digits) != "159#" {
		t.Errorf("DTMF from baresip: %q, want \"159#\" (offer DTMF %v)\n%s", bc.digits, bc.c.Media().HasDTMF, out)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "dump-*-dec.wav"))
	if len(files) != 1 {
		t.Fatalf("recordings %v, want one *-dec.wav\n%s", files, out)
	}
	rate, pcm := siptest.ReadWAV(t, files[0])
	t.Logf("baresip recorded %d samples at %d Hz (%.2f s)", len(pcm), rate, float64(len(pcm))/float64(rate))
	tone := siptest.FindTone(pcm, rate)
	if tone.Silent {
		t.Fatalf("the recording is silent\n%s", out)
	}
	if tone.Secs < 1 {
		t.Fatalf("only %.2f s of tone heard", tone.Secs)
	}
	if tone.Gaps != 0 {
		t.Errorf("%d silent 20 ms frames inside %d ms of tone", tone.Gaps, len(tone.Speech)*1000/rate)
	}
	if math.Abs(tone.Hz-440) > 20 {
		t.Errorf("heard %.0f Hz, want 440", tone.Hz)
	}
}
