package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

func sampleReport() *report {
	run := &runReport{Name: "search-250", Calls: 250, Duty: 0.4, WindowS: 15, Pass: true,
		PacingP50: 0.3, PacingP99: 1.2, PacingMax: 4, Packets: 187000, Expected: 187500,
		BridgeLate: 0, AddedFirstP50: 7.5, AddedFirstP99: 20, AddedFirstN: 300,
		TextToSpeech: Summary{N: 300, P50: 160, P99: 175, Max: 180},
		Barge:        Summary{N: 20, P50: -12, P99: -1, Max: -1},
		Events:       map[string]int{"speaking": 10, "done": 9},
		BridgeCPU:    1.1, GenCPU: 0.2, OtherCPU: 0.3, CPUPerCallMs: 4.4,
		OtherProcs: []busyProc{{PID: 7, Comm: "go", Cores: 0.3}},
	}
	failed := *run
	failed.Calls, failed.Pass, failed.Why = 500, false, "pacing p99 3 ms > 2 ms"
	return &report{
		Started: time.Unix(1700000000, 0), Finished: time.Unix(1700000600, 0),
		Machine:    machineInfo{CPUs: 2, Model: "Test CPU"},
		Utterances: []utterance{{Text: "x", Duration: 3 * time.Second}}, Calibrated: true,
		Search: []*runReport{run, &failed}, MaxN: 250, SearchMax: 1000, Final: run,
		PeerAudio: 60, PeerRepeats: 3,
		PeerSets: []peerSet{{Encoder: bridgeEncoder(), Peers: []peerResult{
			{Name: "ffmpeg", PerAudioS: 0.004, Marginal: 0.0035, Repeats: []float64{0.24}},
			{Name: "gstreamer", Err: "not installed"},
		}}},
		Ratios: []ratio{{Basis: "b", Peer: "ffmpeg", VB: 0.008, Other: 0.004, Ratio: 2}},
	}
}

func TestPrintReport(t *testing.T) {
	var b bytes.Buffer
	printReport(&b, sampleReport())
	out := b.String()
	for _, want := range []string{
		"largest passing N: 250",
		"N=500 failed: pacing p99 3 ms > 2 ms",
		"final run: N=250 calls",
		"p50 0.300  p99 1.200  max 4.000 ms",
		"gstreamer", "failed: not installed",
		"2.00×",
		"WARNING", // 0.3 cores of other processes
		"go[7] 0.30",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printReport(&b, &report{}) // an empty report prints without panicking
	if !strings.Contains(b.String(), "voicebridge load report") {
		t.Error("empty report")
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := sampleReport()
	r.Final.AddedFirstP99 = finite(math.NaN()) // no observations
	name, err := writeJSON(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{name, filepath.Join(dir, "load-latest.json")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var back report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.MaxN != 250 || len(back.Search) != 2 || back.Final.AddedFirstP99 != -1 || back.PeerSets[0].Peers[0].PerAudioS != 0.004 {
			t.Errorf("round trip: %+v", back)
		}
	}
	if filepath.Base(name) != "load-20231114T221320Z.json" {
		t.Errorf("name %s", name)
	}
}

func TestBridgeEncoderFollowsMedia(t *testing.T) {
	e := bridgeEncoder()
	d := media.DefaultEncoderConfig
	if e.App != d.Application.String() || e.Bitrate != d.Bitrate || e.Complexity != d.Complexity || e.DTX != d.DTX || e.FEC != d.FEC {
		t.Errorf("peers' settings %+v differ from media's defaults %+v", e, d)
	}
	if e.InRate != 24000 || e.App == "default" {
		t.Errorf("settings %+v", e)
	}
	for _, q := range []media.ResamplerQuality{media.ResampleQuick, media.ResampleLow, media.ResampleMedium, media.ResampleHigh, media.ResampleVeryHigh} {
		if _, bits := soxrFor(q); bits < 15 || bits > 33 {
			t.Errorf("%v: precision %d outside ffmpeg's range", q, bits)
		}
	}
}
