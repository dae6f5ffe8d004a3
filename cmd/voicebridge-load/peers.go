package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/voicebridge/voicebridge/bridge"
	"github.com/voicebridge/voicebridge/media"
)

// The peers (ffmpeg, GStreamer) are measured by peers.sh, at the encoder
// settings this tool prints with -encoder, before the load runs; this tool
// reads the script's result (-peers) and divides voicebridge's cost by each
// peer's.

// encoderEnv is voicebridge's default encoding, read from its packages, as
// shell assignments for peers.sh. VBR is libopus' default (constrained),
// which media leaves alone.
func encoderEnv() []string {
	e := media.DefaultEncoderConfig
	return []string{
		"OPUS_APPLICATION=" + e.Application.String(),
		"OPUS_BITRATE=" + strconv.Itoa(e.Bitrate),
		"OPUS_COMPLEXITY=" + strconv.Itoa(e.Complexity),
		"OPUS_VBR=constrained",
		"OPUS_FEC=" + strconv.FormatBool(e.FEC),
		"OPUS_LOSS=" + strconv.Itoa(e.PacketLossPercent),
		"OPUS_DTX=" + strconv.FormatBool(e.DTX),
		"PCM_RATE=" + strings.TrimPrefix(bridge.DefaultTTSFormat, "pcm_"),
		"SOXR_PRECISION=" + strconv.Itoa(soxrPrecision(media.DefaultResamplerQuality)),
	}
}

// soxrPrecision maps media's resampler quality to the nearest precision
// ffmpeg's aresample can ask soxr for (15–33 bits; soxr's 16-bit recipe
// stands in for its low and medium ones).
func soxrPrecision(q media.ResamplerQuality) int {
	if p, ok := map[media.ResamplerQuality]int{media.ResampleQuick: 15, media.ResampleHigh: 20, media.ResampleVeryHigh: 28}[q]; ok {
		return p
	}
	return 16
}

// peerResult is one peer's cost; Marginal leaves out process start-up
// (CPU of the full input − of a short one, ÷ the difference in audio).
type peerResult struct {
	Name      string  `json:"name"`
	PerAudioS float64 `json:"cpu_s_per_audio_s"`
	Marginal  float64 `json:"marginal_cpu_s_per_audio_s"`
}

// peersFile is what peers.sh wrote: comment lines, the settings among them
// as "# KEY=VALUE", and one line per peer, "name per-audio-s marginal".
type peersFile struct {
	Notes    []string     `json:"notes"`
	Settings []string     `json:"settings"`
	Peers    []peerResult `json:"peers"`
}

var errPeersFile = errors.New("load: bad peers file")

func readPeers(path string) (*peersFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parsePeers(f)
}

// parsePeers reads a peers file and fails unless its peers ran at
// voicebridge's settings.
func parsePeers(r io.Reader) (*peersFile, error) {
	pf := &peersFile{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if c = strings.TrimSpace(c); strings.Contains(c, "=") && !strings.Contains(c, " ") {
				pf.Settings = append(pf.Settings, c)
			} else if c != "" {
				pf.Notes = append(pf.Notes, c)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p := peerResult{Name: f[0]}
		if _, err := fmt.Sscan(strings.Join(f[1:], " "), &p.PerAudioS, &p.Marginal); len(f) != 3 || err != nil || p.PerAudioS <= 0 {
			return nil, fmt.Errorf("%w: line %d: %q", errPeersFile, n, line)
		}
		pf.Peers = append(pf.Peers, p)
	}
	if got, want := strings.Join(pf.Settings, " "), strings.Join(encoderEnv(), " "); got != want {
		return nil, fmt.Errorf("%w: the peers ran at %q, voicebridge encodes at %q", errPeersFile, got, want)
	}
	return pf, sc.Err()
}

// vs is voicebridge's CPU per speech-second in continuous speech over p's
// per audio-second; 0 if either was not measured.
func (r *report) vs(p peerResult) float64 {
	if r.Continuous == nil || r.Continuous.CPUPerSpeechS <= 0 || p.PerAudioS <= 0 {
		return 0
	}
	return round(r.Continuous.CPUPerSpeechS/p.PerAudioS, 3)
}
