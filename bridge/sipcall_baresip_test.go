package bridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
`, ports[0], ports[2], ports[3], ctrlPort, dir)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:baresip@127.0.0.1>;regint=0;audio_codecs=PCMU\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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

	ctrl, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrlPort))
	if err != nil {
		t.Fatalf("baresip ctrl_tcp: %v", err)
	}
	msg := `{"command":"sndcode","params":"159#","token":"t1"}`
	if _, err := fmt.Fprintf(ctrl, "%d:%s,", len(msg), msg); err != nil {
		t.Fatal(err)
	}
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
	rate, pcm := readWAV16(t, files[0])
	frame := rate / 50
	first, last := -1, -1
	for i := 0; i+frame <= len(pcm); i += frame {
		if rms16(pcm[i:i+frame]) > 1000 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatalf("baresip heard silence\n%s", outBuf.String())
	}
	speech := pcm[first : last+frame]
	secs := float64(len(speech)) / float64(rate)
	gaps, crossings := 0, 0
	for i := 0; i+frame <= len(speech); i += frame {
		if rms16(speech[i:i+frame]) < 1000 {
			gaps++
		}
	}
	for i := 1; i < len(speech); i++ {
		if (speech[i-1] < 0) != (speech[i] < 0) {
			crossings++
		}
	}
	hz := float64(crossings) / 2 / secs
	t.Logf("baresip heard %.2f s of speech, %d silent frames inside, %.0f Hz", secs, gaps, hz)
	if secs < 2.8 || gaps != 0 || math.Abs(hz-440) > 20 {
		t.Fatalf("heard %.2f s (want 3) with %d gaps at %.0f Hz (want 440)", secs, gaps, hz)
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

// readWAV16 reads a 16-bit mono PCM WAV file.
func readWAV16(t *testing.T, path string) (int, []int16) {
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

func rms16(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(s), 1)))
}
