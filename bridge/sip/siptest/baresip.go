// Package siptest holds test helpers shared by the SIP tests of the bridge
// and bridge/sip packages: driving baresip (Debian's SIP user agent) and
// reading what it recorded. Only tests import it.
package siptest

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// WriteBaresipConfig writes baresip's config and accounts files into dir:
// no sound card (aubridge as its audio device, sndfile dumping what it
// decodes to WAV files in dir), SIP on sipPort, RTP on rtpLo-rtpHi, its
// control socket on ctrlPort, and one account offering PCMU.
func WriteBaresipConfig(t *testing.T, dir string, sipPort, rtpLo, rtpHi, ctrlPort int) {
	t.Helper()
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
`, sipPort, rtpLo, rtpHi, ctrlPort, dir)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:baresip@127.0.0.1>;regint=0;audio_codecs=PCMU\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// SendDigits presses digits (RFC 4733) through baresip's control socket on
// ctrlPort (a netstring of JSON) and returns the connection, for the caller
// to close once baresip is done.
func SendDigits(t *testing.T, ctrlPort int, digits string) net.Conn {
	t.Helper()
	ctrl, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrlPort))
	if err != nil {
		t.Fatalf("baresip ctrl_tcp: %v", err)
	}
	msg := fmt.Sprintf(`{"command":"sndcode","params":%q,"token":"t1"}`, digits)
	if _, err := fmt.Fprintf(ctrl, "%d:%s,", len(msg), msg); err != nil {
		t.Fatal(err)
	}
	return ctrl
}

// ReadWAV reads a 16-bit mono PCM WAV file.
func ReadWAV(t *testing.T, path string) (int, []int16) {
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

// RMS is the root mean square of s (0 for no samples).
func RMS(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(s), 1)))
}

// Tone is what a recording holds of a tone: from its first to its last
// 20 ms frame louder than 1000 RMS.
type Tone struct {
	Silent bool    // no frame was loud
	Speech []int16 // first to last loud frame
	Secs   float64 // the length of Speech
	Gaps   int     // quiet 20 ms frames inside Speech
	Hz     float64 // from Speech's zero-crossing rate
}

// FindTone measures the tone in pcm (at rate Hz).
func FindTone(pcm []int16, rate int) Tone {
	frame := rate / 50
	first, last := -1, -1
	for i := 0; i+frame <= len(pcm); i += frame {
		if RMS(pcm[i:i+frame]) > 1000 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return Tone{Silent: true}
	}
	speech := pcm[first : last+frame]
	secs := float64(len(speech)) / float64(rate)
	gaps, crossings := 0, 0
	for i := 0; i+frame <= len(speech); i += frame {
		if RMS(speech[i:i+frame]) < 1000 {
			gaps++
		}
	}
	for i := 1; i < len(speech); i++ {
		if (speech[i-1] < 0) != (speech[i] < 0) {
			crossings++
		}
	}
	return Tone{Speech: speech, Secs: secs, Gaps: gaps, Hz: float64(crossings) / 2 / secs}
}
