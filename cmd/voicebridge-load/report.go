package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one invocation measured; it is written as JSON.
type report struct {
	Started     time.Time    `json:"started"`
	Finished    time.Time    `json:"finished"`
	Machine     machineInfo  `json:"machine"`
	Settings    any          `json:"settings"`
	Utterances  []utterance  `json:"utterances"`
	Calibrated  bool         `json:"utterances_calibrated"`
	Search      []*runReport `json:"search"`
	Steps       []searchStep `json:"search_steps"`
	MaxN        int          `json:"max_calls_passing"`
	SearchMax   int          `json:"search_max"`
	Final       *runReport   `json:"final,omitempty"`     // the last final run
	Finals      []*runReport `json:"finals,omitempty"`    // every final run, in order
	Confirmed   int          `json:"max_calls_confirmed"` // N whose final run passed; 0 if none
	Continuous  *runReport   `json:"continuous_speech,omitempty"`
	Idle        *runReport   `json:"idle,omitempty"`
	PeerAudio   float64      `json:"peer_audio_s"`
	PeerRepeats int          `json:"peer_repeats"`
	PeerSets    []peerSet    `json:"peer_sets"` // the first at voicebridge's settings
	Ratios      []ratio      `json:"ratios"`
	Errors      []string     `json:"errors,omitempty"`
}

type machineInfo struct {
	CPUs      int     `json:"cpus"`
	Model     string  `json:"cpu_model"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	Commit    string  `json:"commit"`
	LoadStart string  `json:"loadavg_start"`
	LoadEnd   string  `json:"loadavg_end"`
	OtherCPU  float64 `json:"other_cpu_cores_final"`
}

// peerSet is every peer measured at one encoder setting.
type peerSet struct {
	Encoder encSettings  `json:"encoder"`
	Peers   []peerResult `json:"peers"`
}

// ratio is voicebridge's cost over a peer's, per audio-second.
type ratio struct {
	Basis string  `json:"basis"`
	Peer  string  `json:"peer"`
	VB    float64 `json:"voicebridge_cpu_s_per_audio_s"`
	Other float64 `json:"peer_cpu_s_per_audio_s"`
	Ratio float64 `json:"ratio"`
}

func writeJSON(dir string, r *report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, "load-"+r.Started.UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return "", err
	}
	return name, os.WriteFile(filepath.Join(dir, "load-latest.json"), b, 0o644)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func f3(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", v)
}

// printReport writes the human table.
func printReport(w io.Writer, r *report) {
	m := r.Machine
	fmt.Fprintf(w, "\nvoicebridge load report  %s  (%.0f s)\n", r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Seconds())
	fmt.Fprintf(w, "machine: %d × %s, %s, %s, commit %s; load average at start %s, at end %s\n",
		m.CPUs, m.Model, m.Kernel, m.Go, m.Commit, m.LoadStart, m.LoadEnd)
	if len(r.Utterances) > 0 {
		var ds []string
		for _, u := range r.Utterances {
			ds = append(ds, fmt.Sprintf("%.2f s", u.Duration.Seconds()))
		}
		how := "estimated at 12 characters/s"
		if r.Calibrated {
			how = "calibrated: speech on the wire"
		}
		fmt.Fprintf(w, "utterances (%s): %s\n", how, strings.Join(ds, ", "))
	}
	if len(r.Search) > 0 {
		fmt.Fprintf(w, "\nsearch for the largest N with pacing p99 ≤ 2 ms and no late frames (each probe a fresh bridge):\n")
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "N\tpass\tpacing p50\tp99\tmax ms\tlate br/rx\tgaps\tskips\trx pkts %\tduty\tbridge cores\tgen cores\ttts cores\tother cores\tCPU ms/call·s\tRSS KiB/call\tgor/call\tbusiest other\t")
		for _, p := range r.Search {
			rx := 0.0
			if p.Expected > 0 {
				rx = 100 * float64(p.Packets) / float64(p.Expected)
			}
			busy := "-"
			if len(p.OtherProcs) > 0 {
				busy = fmt.Sprintf("%s %.2f", p.OtherProcs[0].Comm, p.OtherProcs[0].Cores)
			}
			fmt.Fprintf(tw, "%d\t%s\t%.3f\t%.3f\t%.3f\t%.0f/%d\t%d\t%d\t%.1f\t%.0f%%\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t%.0f\t%.1f\t%s\t\n",
				p.Calls, yesNo(p.Pass), p.PacingP50, p.PacingP99, p.PacingMax, p.BridgeLate, p.RxLate, p.Gaps, p.Skips, rx, 100*p.DutyMeas,
				p.BridgeCPU, p.GenCPU, p.TTSCPU, p.OtherCPU, p.CPUPerCallMs, p.RSSPerCallKiB, p.GorPerCall, busy)
		}
		tw.Flush()
		for _, p := range r.Search {
			if !p.Pass {
				fmt.Fprintf(w, "  N=%d failed: %s\n", p.Calls, p.Why)
			}
		}
		fmt.Fprintf(w, "largest passing N: %d (probes up to %d)\n", r.MaxN, r.SearchMax)
	}
	for _, f := range r.Finals[:max(0, len(r.Finals)-1)] {
		fmt.Fprintf(w, "\nfinal run at N=%d (%.0f s): pass=%s %s\n", f.Calls, f.WindowS, yesNo(f.Pass), f.Why)
	}
	if r.Final != nil {
		printRun(w, "final run", r.Final)
		if len(r.Search) > 0 {
			if r.Confirmed > 0 {
				fmt.Fprintf(w, "  => largest N confirmed by a %.0f s run: %d calls\n", r.Final.WindowS, r.Confirmed)
			} else {
				fmt.Fprintf(w, "  => no N was confirmed by a final run: near the threshold, runs vary\n")
			}
		}
	}
	if r.Idle != nil {
		printRun(w, "idle calls (no text)", r.Idle)
	}
	if r.Continuous != nil {
		printRun(w, "continuous speech (cost)", r.Continuous)
	}
	for _, set := range r.PeerSets {
		e := set.Encoder
		fmt.Fprintf(w, "\npeers at %s: CPU-seconds per audio-second, the same %.0f s of espeak-ng speech at %d Hz, Opus %s %d bit/s complexity %d vbr=%s fec=%t dtx=%t, 20 ms, RTP to loopback (median of %d)\n",
			e.Source, r.PeerAudio, e.InRate, e.App, e.Bitrate, e.Complexity, e.VBR, e.FEC, e.DTX, r.PeerRepeats)
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "peer\tCPU s/audio s\tmarginal (no start-up)\trepeats (CPU s)\tframes/RTP packets\t")
		for _, p := range set.Peers {
			if p.Err != "" {
				fmt.Fprintf(tw, "%s\tfailed: %s\t\t\t\t\n", p.Name, p.Err)
				continue
			}
			fmt.Fprintf(tw, "%s\t%.5f\t%.5f\t%v\t%d\t\n", p.Name, p.PerAudioS, p.Marginal, p.Repeats, p.Packets)
		}
		tw.Flush()
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(w, "\nvoicebridge ÷ peer (CPU per audio-second; < 1 means voicebridge is cheaper):\n")
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "voicebridge basis\tpeer\tvoicebridge\tpeer\tratio\t")
		for _, q := range r.Ratios {
			fmt.Fprintf(tw, "%s\t%s\t%.5f\t%.5f\t%.2f×\t\n", q.Basis, q.Peer, q.VB, q.Other, q.Ratio)
		}
		tw.Flush()
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

func printRun(w io.Writer, title string, p *runReport) {
	fmt.Fprintf(w, "\n%s: N=%d calls, %.0f s window, duty target %.0f%% measured %.1f%%, pass=%s %s\n",
		title, p.Calls, p.WindowS, 100*p.Duty, 100*p.DutyMeas, yesNo(p.Pass), p.Why)
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("pacing error |inter-arrival − 20 ms| (kernel rx time)", fmt.Sprintf("p50 %.3f  p99 %.3f  max %.3f ms", p.PacingP50, p.PacingP99, p.PacingMax))
	row("bridge's own pacing histogram p99", f3(p.BridgePacingP99)+" ms")
	row("late frames (bridge counter / rx > 20 ms behind grid)", fmt.Sprintf("%.0f / %d", p.BridgeLate, p.RxLate))
	row("packets received / expected, seq gaps, reordered, ts skips", fmt.Sprintf("%d / %d, %d, %d, %d", p.Packets, p.Expected, p.Gaps, p.Reorder, p.Skips))
	row("receiver socket drops (ours, not the bridge's)", fmt.Sprintf("%d", p.RxDrops))
	row("added first-audio latency (bridge histogram: TTS byte → RTP)", fmt.Sprintf("p50 %s  p99 %s ms (n=%.0f)", f3(p.AddedFirstP50), f3(p.AddedFirstP99), p.AddedFirstN))
	row("TTS time to first byte (bridge histogram) p50", f3(p.TTSFirstByteP50)+" ms")
	row("text POST/WS → first speech packet at receiver", fmt.Sprintf("p50 %.1f  p99 %.1f  max %.1f ms (n=%d)", p.TextToSpeech.P50, p.TextToSpeech.P99, p.TextToSpeech.Max, p.TextToSpeech.N))
	row("barge-in: clear → last speech packet (< 0: none after the clear)", fmt.Sprintf("p50 %.1f  p99 %.1f  max %.1f ms (n=%d; %d clears found nothing playing)", p.Barge.P50, p.Barge.P99, p.Barge.Max, p.Barge.N, p.BargeNA))
	row("barge-in: clear → first silence packet", fmt.Sprintf("p50 %.1f  p99 %.1f  max %.1f ms (n=%d)", p.ClearToSilence.P50, p.ClearToSilence.P99, p.ClearToSilence.Max, p.ClearToSilence.N))
	row("texts sent / errors / without speech before the next", fmt.Sprintf("%d / %d / %d", p.Texts, p.TextErrs, p.Missed))
	row("bot WebSocket events", fmt.Sprintf("%v", p.Events))
	a := p.Audio
	row("decoded sample", fmt.Sprintf("%d calls: %d speech frames, %.0f%% above %d dBFS, mean %.1f dBFS; %d silence frames, loudest %.1f dBFS; %d decode errors",
		a.Calls, a.SpeechFrames, 100*a.LoudFrac, loudDBFS, a.SpeechDBFS, a.SilenceFr, a.SilenceMaxDB, a.DecodeErrs))
	row("CPU, cores busy: bridge / load generator / TTS server / rest of machine", fmt.Sprintf("%.3f / %.3f / %.3f / %.3f", p.BridgeCPU, p.GenCPU, p.TTSCPU, p.OtherCPU))
	if p.OtherCPU > 0.1 {
		row("WARNING", fmt.Sprintf("the machine was not quiet: other processes used %.2f cores during the window", p.OtherCPU))
	}
	if len(p.OtherProcs) > 0 {
		var ps []string
		for _, o := range p.OtherProcs {
			ps = append(ps, fmt.Sprintf("%s[%d] %.2f", o.Comm, o.PID, o.Cores))
		}
		row("other busy processes (cores)", strings.Join(ps, ", "))
	}
	row("bridge CPU per call", fmt.Sprintf("%.3f ms per call-second (%.2f%% of a core)", p.CPUPerCallMs, p.CPUPerCallMs/10))
	row("bridge CPU per audio-second: speech / on the wire", fmt.Sprintf("%.5f / %.5f s", p.CPUPerSpeechS, p.CPUPerWireS))
	row("bridge RSS: idle → loaded, per call", fmt.Sprintf("%.1f → %.1f MiB, %.0f KiB", p.RSSBase, p.RSS, p.RSSPerCallKiB))
	row("bridge goroutines: idle → loaded, per call", fmt.Sprintf("%.0f → %.0f, %.1f", p.GoroutinesBase, p.Goroutines, p.GorPerCall))
	row("call setup (all N) / bridge shutdown", fmt.Sprintf("%.1f s (%d errors) / %.1f s", p.SetupS, p.SetupErr, p.ShutdownS))
	if p.FirstErr != "" {
		row("first error", p.FirstErr)
	}
	if pr := p.Profile; pr != nil {
		if pr.Err != "" {
			row("bridge CPU profile (perf)", pr.Err)
		} else {
			row("bridge CPU by object (perf, "+fmt.Sprint(pr.Samples)+" samples)", joinShares(pr.DSOs, 6))
			row("bridge CPU by symbol (perf)", joinShares(pr.Symbols, 8))
		}
	}
	tw.Flush()
}

func joinShares(ss []share, n int) string {
	var parts []string
	for _, s := range ss[:min(n, len(ss))] {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", s.Name, s.Percent))
	}
	return strings.Join(parts, ", ")
}
