package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/voicebridge/voicebridge/media"
)

func TestEncoderEnvFollowsMedia(t *testing.T) {
	env := strings.Join(encoderEnv(), "\n") + "\n"
	d := media.DefaultEncoderConfig
	for _, want := range []string{"OPUS_APPLICATION=" + d.Application.String(), "OPUS_COMPLEXITY=5", "OPUS_BITRATE=48000", "PCM_RATE=24000", "SOXR_PRECISION=16"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("encoder settings lack %q:\n%s", want, env)
		}
	}
	for _, q := range []media.ResamplerQuality{media.ResampleQuick, media.ResampleLow, media.ResampleMedium, media.ResampleHigh, media.ResampleVeryHigh} {
		if bits := soxrPrecision(q); bits < 15 || bits > 33 {
			t.Errorf("%v: precision %d outside ffmpeg's range", q, bits)
		}
	}
}

func peersText(settings []string, rows string) string {
	var b strings.Builder
	for _, s := range settings {
		b.WriteString("# " + s + "\n")
	}
	b.WriteString("# CPU-seconds per audio-second: median of 3 runs\n\n" + rows)
	return b.String()
}

func TestParsePeers(t *testing.T) {
	pf, err := parsePeers(strings.NewReader(peersText(encoderEnv(), "ffmpeg 0.00537 0.00431\ngstreamer 0.00469 0.00447\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(pf.Peers) != 2 || pf.Peers[1] != (peerResult{"gstreamer", 0.00469, 0.00447}) {
		t.Errorf("peers %+v", pf.Peers)
	}
	if len(pf.Notes) != 1 || !strings.HasPrefix(pf.Notes[0], "CPU-seconds") || len(pf.Settings) != len(encoderEnv()) {
		t.Errorf("notes %q settings %q", pf.Notes, pf.Settings)
	}
	other := append([]string{}, encoderEnv()...)
	other[2] = "OPUS_COMPLEXITY=10"
	for name, text := range map[string]string{
		"other settings": peersText(other, "ffmpeg 0.01 0.01\n"),
		"no settings":    "ffmpeg 0.01 0.01\n",
		"two columns":    peersText(encoderEnv(), "ffmpeg 0.01\n"),
		"not a number":   peersText(encoderEnv(), "ffmpeg x 0.01\n"),
		"zero cost":      peersText(encoderEnv(), "ffmpeg 0 0\n"),
	} {
		if _, err := parsePeers(strings.NewReader(text)); !errors.Is(err, errPeersFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
