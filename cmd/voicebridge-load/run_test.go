package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

// TestRunLoadAgainstTheBridge builds the real bridge, calibrates one
// utterance on it and makes a short run of three calls against a fresh
// one, with a stand-in for the perf command: what the report says must
// come from the wire and the bridge's /metrics.
func TestRunLoadAgainstTheBridge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bridge")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "voicebridge")
	if err := buildBridge(ctx, "../..", bin); err != nil {
		t.Fatal(err)
	}
	o := runOptions{Name: "test", Calls: 3, Warmup: time.Second, Window: 3 * time.Second,
		Drive: driveConfig{Duty: 0.5}, Bin: bin, BridgeArgs: []string{"-max-calls", "8"},
		LogDir: dir, PerfCmd: []string{"echo", "sampled"}, Log: slog.New(slog.DiscardHandler)}
	us, err := calibrate(ctx, o, utteranceTexts[:1])
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].Duration < time.Second || us[0].Duration > 10*time.Second {
		t.Fatalf("calibrated %+v", us)
	}
	o.Drive.Utterances = us
	rep, err := runLoad(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SetupErr != 0 || rep.BotErrs != 0 || rep.FirstErr != "" {
		t.Errorf("errors: setup %d bots %d first %q", rep.SetupErr, rep.BotErrs, rep.FirstErr)
	}
	// 3 calls × 3 s at 50 packets/s, give or take the window's edges.
	if rep.Expected < 450 || rep.Expected > 460 || rep.Packets < 400 || rep.Packets > 465 || rep.Gaps != 0 {
		t.Errorf("packets %d of %d, gaps %d", rep.Packets, rep.Expected, rep.Gaps)
	}
	if rep.BridgeLate < 0 {
		t.Errorf("bridge late frames not exported")
	}
	if rep.BridgeCPU <= 0 || rep.TTSCPU < 0 || rep.RSS <= rep.RSSBase/2 || rep.GorPerCall < 1 || rep.Goroutines <= rep.GoroutinesBase {
		t.Errorf("cost: cpu %v tts %v rss %v→%v goroutines %v→%v (%v per call)",
			rep.BridgeCPU, rep.TTSCPU, rep.RSSBase, rep.RSS, rep.GoroutinesBase, rep.Goroutines, rep.GorPerCall)
	}
	if rep.Texts == 0 || rep.TextErrs != 0 {
		t.Errorf("texts %d, errors %d", rep.Texts, rep.TextErrs)
	}
	// The perf command got the bridge's PID and the window.
	var pid int
	var secs string
	if len(rep.Perf) != 1 {
		t.Errorf("perf lines %q", rep.Perf)
	} else if _, err := fmt.Sscanf(rep.Perf[0], "sampled %d %s", &pid, &secs); err != nil || pid <= 0 || secs != "3.000" {
		t.Errorf("perf line %q", rep.Perf[0])
	}

	// G.711: the bridge answers PCMU.
	o.Name, o.Codec, o.PerfCmd = "test-g711", media.CodecPCMU, nil
	if rep, err = runLoad(ctx, o); err != nil {
		t.Fatal(err)
	}
	if rep.Codec != "pcmu" || rep.SetupErr != 0 || rep.Gaps != 0 || rep.Packets < 400 || rep.Expected < 450 {
		t.Errorf("g711: codec %s setup errors %d packets %d of %d gaps %d", rep.Codec, rep.SetupErr, rep.Packets, rep.Expected, rep.Gaps)
	}
	// Two-way (Opus): every bot hears its caller, 3 bots × 3 s at 50 frames/s.
	o.Name, o.Codec, o.TwoWay = "test-two-way", media.CodecOpus, true
	if rep, err = runLoad(ctx, o); err != nil {
		t.Fatal(err)
	}
	// The bridge conceals what is late, so the stream is continuous.
	if rep.CallerExpected < 440 || rep.CallerFrames < rep.CallerExpected*3/4 || rep.CallerFrames > rep.CallerExpected+10 || rep.Gaps != 0 {
		t.Errorf("two-way: caller frames %d of %d, gaps %d", rep.CallerFrames, rep.CallerExpected, rep.Gaps)
	}
}
