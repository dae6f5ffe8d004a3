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
// reads the script's result file (-peers) and divides voicebridge's cost
// by each peer's.

// encoderEnv is voicebridge's default encoding, read from the packages
// themselves, as shell assignments for peers.sh. VBR is libopus' default
// (constrained), which media leaves alone.
func encoderEnv() []string {
	e := media.DefaultEncoderConfig
	rate := strings.TrimPrefix(bridge.DefaultTTSFormat, "pcm_")
	return []string{
		"OPUS_APPLICATION=" + e.Application.String(),
		"OPUS_BITRATE=" + strconv.Itoa(e.Bitrate),
		"OPUS_COMPLEXITY=" + strconv.Itoa(e.Complexity),
		"OPUS_VBR=constrained",
		"OPUS_FEC=" + strconv.FormatBool(e.FEC),
		"OPUS_LOSS=" + strconv.Itoa(e.PacketLossPercent),
		"OPUS_DTX=" + strconv.FormatBool(e.DTX),
		"PCM_RATE=" + rate,
		"SOXR_PRECISION=" + strconv.Itoa(soxrPrecision(media.DefaultResamplerQuality)),
	}
}

// soxrPrecision maps media's resampler quality to the nearest precision
// ffmpeg's aresample can ask soxr for (15–33 bits: soxr's 16-bit recipe
// stands in for its low and medium ones).
func soxrPrecision(q media.ResamplerQuality) int {
	switch q {
	case media.ResampleQuick:
		return 15
	case media.ResampleHigh:
		return 20
	case media.ResampleVeryHigh:
		return 28
	}
	return 16
}

// peerResult is one peer's cost, as peers.sh measured it.
type peerResult struct {
	Name      string  `json:"name"`
	PerAudioS float64 `json:"cpu_s_per_audio_s"`
	// Marginal leaves out process start-up: (CPU of the full input − CPU of
	// a short one) ÷ the difference in audio.
	Marginal float64 `json:"marginal_cpu_s_per_audio_s"`
}

// peersFile is what peers.sh wrote: comment lines, among them the settings
// as "# KEY=VALUE", and one line per peer, "name per-audio-s marginal".
type peersFile struct {
	Notes    []string     `json:"notes"` // the other comment lines
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
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: line %d: %q", errPeersFile, n, line)
		}
		p := peerResult{Name: f[0]}
		var e1, e2 error
		p.PerAudioS, e1 = strconv.ParseFloat(f[1], 64)
		p.Marginal, e2 = strconv.ParseFloat(f[2], 64)
		if e1 != nil || e2 != nil || p.PerAudioS <= 0 {
			return nil, fmt.Errorf("%w: line %d: %q", errPeersFile, n, line)
		}
		pf.Peers = append(pf.Peers, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return pf, pf.check()
}

// check fails if the peers were not measured at voicebridge's settings.
func (pf *peersFile) check() error {
	got := strings.Join(pf.Settings, " ")
	if want := strings.Join(encoderEnv(), " "); got != want {
		return fmt.Errorf("%w: the peers ran at %q, voicebridge encodes at %q", errPeersFile, got, want)
	}
	return nil
}

// ratio is voicebridge's cost over a peer's, per audio-second.
type ratio struct {
	Basis string  `json:"basis"`
	Peer  string  `json:"peer"`
	VB    float64 `json:"voicebridge_cpu_s_per_audio_s"`
	Other float64 `json:"peer_cpu_s_per_audio_s"`
	Ratio float64 `json:"ratio"`
}

// ratios divides voicebridge's cost per audio-second, in continuous speech
// and in the final run, by each peer's.
func ratios(r *report) []ratio {
	if r.Peers == nil {
		return nil
	}
	type basis struct {
		name string
		v    float64
	}
	var bs []basis
	if c := r.Continuous; c != nil && c.CPUPerSpeechS > 0 {
		bs = append(bs, basis{fmt.Sprintf("continuous speech, %d calls, per speech-second", c.Calls), c.CPUPerSpeechS})
	}
	if f := r.final(); f != nil && f.CPUPerWireS > 0 {
		bs = append(bs, basis{fmt.Sprintf("%.0f%% duty, %d calls, per call-second", 100*f.Duty, f.Calls), f.CPUPerWireS})
	}
	var out []ratio
	for _, b := range bs {
		for _, p := range r.Peers.Peers {
			out = append(out, ratio{Basis: b.name, Peer: p.Name, VB: round(b.v, 5), Other: p.PerAudioS, Ratio: round(b.v/p.PerAudioS, 3)})
		}
	}
	return out
}
