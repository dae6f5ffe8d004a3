package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *report {
	run := &runReport{Name: "search-250", Calls: 250, Duty: 0.4, WindowS: 15, Pass: true, Pass5: true,
		PacingP50: 0.3, PacingP99: 1.2, PacingMax: 4, Packets: 187000, Expected: 187500,
		BridgeCPU: 1.1, GenCPU: 0.2, OtherCPU: 0.3, CPUPerCallMs: 4.4, RSSPerCallKiB: 512, GorPerCall: 31.5,
		Perf: []string{"by object (10 samples): libopus 40.00%"},
	}
	failed := *run
	failed.Calls, failed.Pass, failed.Why = 500, false, "pacing p99 3 ms > 2 ms"
	idle := *run
	idle.Name, idle.Calls, idle.CPUPerCallMs = "idle-100", 100, 1.97
	cont := *run
	cont.Name, cont.Calls, cont.CPUPerSpeechS = "continuous-20", 20, 0.0104
	g711 := *run
	g711.Name, g711.Codec, g711.PacingP99, g711.CPUPerCallMs = "g711-250", "pcmu", 1.5, 4.0
	twoWay := *run
	twoWay.Name, twoWay.Codec, twoWay.TwoWay, twoWay.PacingP99, twoWay.CPUPerCallMs = "two-way-250", "opus", true, 1.9, 6.6
	twoWay.CallerFrames, twoWay.CallerExpected = 186000, 187500
	r := &report{
		Started: time.Unix(1700000000, 0), Finished: time.Unix(1700000600, 0),
		Machine: machineInfo{CPUs: 2, Model: "Test CPU", Commit: "abc1234"}, Config: "cfg",
		Utterances: []utterance{{Text: "x", Duration: 3 * time.Second}},
		Search:     []*runReport{run, &failed}, MaxN: 250, MaxN5: 500, SearchMax: 1000,
		Finals: []*runReport{run}, Confirmed: 250, Idle: &idle, Continuous: &cont, G711: &g711, TwoWay: &twoWay,
		Peers: &peersFile{Settings: encoderEnv(), Notes: []string{"median of 3"}, Peers: []peerResult{
			{Name: "ffmpeg", PerAudioS: 0.0052, Marginal: 0.0043},
			{Name: "gstreamer", PerAudioS: 0.0047, Marginal: 0.0045},
		}},
	}
	return r
}

func TestPrintReport(t *testing.T) {
	var b bytes.Buffer
	r := sampleReport()
	r.Last = &summary{Date: "2026-11-21 01:51 UTC", Commit: "759f094", Machine: "2 × Test CPU", Config: "cfg", MaxN2: 200, IdleCPUMs: 1.97, VsFFmpeg: 1.93, TwoWayCPUMs: 5.5}
	printReport(&b, r, summarizeReport(r))
	out := b.String()
	for _, want := range []string{
		"largest passing N: 250 at 2 ms, 500 at 5 ms",
		"N=500 failed: pacing p99 3 ms > 2 ms",
		"final run: N=250 calls",
		"p50 0.300  p99 1.200  max 4.000 ms",
		"gstreamer  0.00470",
		"0.01040 ÷ 0.00520 = 2.00×",     // continuous speech ÷ ffmpeg
		"1.100 / 0.200 / 0.000 / 0.300", // cores: bridge / generator / TTS / rest of the machine
		"by object (10 samples): libopus 40.00%",
		"250 (confirmed over 15 s, p99 1.200 ms)",
		"0.500 MiB", "31.5",
		"1.970 ms CPU per call-second",
		"0.01040 CPU-s, 2.00× ffmpeg",
		"vs last result (2026-11-21 01:51 UTC, commit 759f094): max N 200 → 250 (+25%), idle CPU/call 1.97 ms → 1.97 ms (+0%), × ffmpeg 1.93 → 2.00 (+4%), two-way CPU/call 5.50 ms → 6.60 ms (+20%)",
		"G.711 (PCMU) at the final N: N=250 calls, pcmu,",
		"two-way (Opus, caller audio to listening bots) at the final N: N=250 calls, opus two-way,",
		"186000 / 187500 (99.2%)",
		"G.711: speech and silence frames are the same size",
		"G.711 (PCMU) at N=250, pass=yes",
		"pacing p99 1.500 ms (final 1.200), 4.000 ms CPU per call-second (final 4.400)",
		"two-way (Opus) at N=250, pass=yes",
		"caller frames delivered 99.2%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	r.Last.Config = "other"
	printReport(&b, r, summarizeReport(r))
	if !strings.Contains(b.String(), "not comparable: it ran on 2 × Test CPU with other") {
		t.Errorf("different settings compared:\n%s", b.String())
	}
	b.Reset()
	r.Confirmed = 0
	printReport(&b, r, summarizeReport(r))
	if !strings.Contains(b.String(), "0 (the search's 250 was not confirmed by a final run)") {
		t.Errorf("unconfirmed N:\n%s", b.String())
	}
	b.Reset()
	printReport(&b, &report{}, summary{}) // an empty report prints without panicking
	if !strings.Contains(b.String(), "voicebridge load report") {
		t.Error("empty report")
	}
}

func TestVsPeers(t *testing.T) {
	r := sampleReport()
	gst := r.Peers.Peers[1]
	if q := r.vs(gst); q != 2.213 { // 0.0104 ÷ 0.0047
		t.Errorf("continuous speech vs gstreamer: %v", q)
	}
	if q := (&report{}).vs(gst); q != 0 {
		t.Errorf("without continuous speech: %v", q)
	}
}

func TestWriteJSONAndSummaryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := sampleReport()
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
		if back.MaxN != 250 || len(back.Search) != 2 || back.Peers.Peers[0].PerAudioS != 0.0052 {
			t.Errorf("round trip: %+v", back)
		}
	}
	if filepath.Base(name) != "load-20231114T221320Z.json" {
		t.Errorf("name %s", name)
	}
	s := summarizeReport(r)
	want := summary{Date: "2023-11-14 22:13 UTC", Commit: "abc1234", Machine: "2 × Test CPU", Config: "cfg", MaxN2: 250, MaxN5: 500,
		P99Ms: 1.2, CPUPerCallMs: 4.4, IdleCPUMs: 1.97, RSSPerCall: 0.5, GorPerCall: 31.5, SpeechCPU: 0.0104, VsFFmpeg: 2,
		G711P99: 1.5, G711CPUMs: 4, TwoWayP99: 1.9, TwoWayCPUMs: 6.6, TwoWayCaller: 0.992}
	if s != want {
		t.Errorf("summary %+v\nwant    %+v", s, want)
	}
	path := filepath.Join(dir, "last.json")
	if err := writeSummary(path, s); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) > 900 {
		t.Errorf("summary is %d bytes: not small", len(b))
	}
	back, err := readSummary(path)
	if err != nil || *back != s {
		t.Errorf("read back %+v %v", back, err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readSummary(path); err == nil {
		t.Error("broken summary read")
	}
}
