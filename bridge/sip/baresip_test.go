package sip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	cfg := fmt.Sprintf(`poll_method		poll
sip_listen		127.0.0.1:%d
audio_player		aubridge,vb
audio_source		aubridge,vb
audio_alert		aubridge,vb
rtp_ports		%d-%d
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module			sndfile.so
module_app		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:%d
snd_path		%s
`, port, port+2, port+3, ctrlPort, dir)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:baresip@127.0.0.1>;regint=0;audio_codecs=PCMU\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
	ctrl, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrlPort))
	if err != nil {
		t.Fatalf("baresip ctrl_tcp: %v", err)
	}
	msg := `{"command":"sndcode","params":"159#","token":"t1"}`
	if _, err := fmt.Fprintf(ctrl, "%d:%s,", len(msg), msg); err != nil {
		t.Fatal(err)
	}
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
	rate, pcm := readWAV(t, files[0])
	t.Logf("baresip recorded %d samples at %d Hz (%.2f s)", len(pcm), rate, float64(len(pcm))/float64(rate))
	frame := rate / 50
	first, last := -1, -1
	for i := 0; i+frame <= len(pcm); i += frame {
		if rms(pcm[i:i+frame]) > 1000 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatalf("the recording is silent\n%s", out)
	}
	speech := pcm[first : last+frame]
	if secs := float64(len(speech)) / float64(rate); secs < 1 {
		t.Fatalf("only %.2f s of tone heard", secs)
	}
	gaps := 0
	for i := 0; i+frame <= len(speech); i += frame {
		if rms(speech[i:i+frame]) < 1000 {
			gaps++
		}
	}
	if gaps != 0 {
		t.Errorf("%d silent 20 ms frames inside %d ms of tone", gaps, len(speech)*1000/rate)
	}
	crossings := 0
	for i := 1; i < len(speech); i++ {
		if (speech[i-1] < 0) != (speech[i] < 0) {
			crossings++
		}
	}
	if hz := float64(crossings) / 2 / (float64(len(speech)) / float64(rate)); math.Abs(hz-440) > 20 {
		t.Errorf("heard %.0f Hz, want 440", hz)
	}
}

// readWAV reads a 16-bit mono PCM WAV file.
func readWAV(t *testing.T, path string) (int, []int16) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s is not a WAV file", path)
	}
	rate, channels, bits := 0, 0, 0
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8 : min(p+8+size, len(b))]
		switch id {
		case "fmt ":
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
			bits = int(binary.LittleEndian.Uint16(body[14:]))
		case "data":
			if bits != 16 || channels != 1 {
				t.Fatalf("%s: %d-bit %d-channel, want 16-bit mono", path, bits, channels)
			}
			pcm := make([]int16, len(body)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return rate, pcm
		}
		p += 8 + size + size%2
	}
	t.Fatalf("%s: no data chunk", path)
	return 0, nil
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}
