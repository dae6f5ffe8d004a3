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
	Started    time.Time         `json:"started"`
	Finished   time.Time         `json:"finished"`
	Machine    machineInfo       `json:"machine"`
	Config     string            `json:"config"`
	Settings   map[string]string `json:"settings"`
	Utterances []utterance       `json:"utterances"`
	Search     []*runReport      `json:"search"`
	MaxN       int               `json:"max_calls_passing"`     // search: pacing p99 ≤ 2 ms
	MaxN5      int               `json:"max_calls_passing_5ms"` // search: pacing p99 ≤ 5 ms
	SearchMax  int               `json:"search_max"`
	Finals     []*runReport      `json:"finals,omitempty"`    // every final run, in order
	Confirmed  int               `json:"max_calls_confirmed"` // N whose final run passed; 0 if none
	G711       *runReport        `json:"g711,omitempty"`      // at the final N, PCMU
	TwoWay     *runReport        `json:"two_way,omitempty"`   // at the final N, Opus with caller audio
	Continuous *runReport        `json:"continuous_speech,omitempty"`
	Idle       *runReport        `json:"idle,omitempty"`
	Peers      *peersFile        `json:"peers,omitempty"`
	Ratios     []ratio           `json:"ratios"`
	Last       *summary          `json:"last_result,omitempty"`
	Errors     []string          `json:"errors,omitempty"`
}

// final is the last final run, or nil.
func (r *report) final() *runReport {
	if len(r.Finals) == 0 {
		return nil
	}
	return r.Finals[len(r.Finals)-1]
}

type machineInfo struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Commit    string `json:"commit"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
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

func pct(a, b uint64) float64 { return 100 * float64(a) / float64(max(b, 1)) }

func f3(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", v)
}

// printReport writes the human report; now is r's summary.
func printReport(w io.Writer, r *report, now summary) {
	m := r.Machine
	fmt.Fprintf(w, "\nvoicebridge load report  %s  (%.0f s)\n", r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Seconds())
	fmt.Fprintf(w, "machine: %d × %s, %s, %s, commit %s; load average at start %s, at end %s\n",
		m.CPUs, m.Model, m.Kernel, m.Go, m.Commit, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "settings: %s\n", r.Config)
	if len(r.Utterances) > 0 {
		var ds []string
		for _, u := range r.Utterances {
			ds = append(ds, fmt.Sprintf("%.2f s", u.Duration.Seconds()))
		}
		fmt.Fprintf(w, "utterances (calibrated: speech on the wire): %s\n", strings.Join(ds, ", "))
	}
	if len(r.Search) > 0 {
		fmt.Fprintf(w, "\nsearch for the largest N with no late frames or gaps and pacing p99 ≤ 2 ms, then ≤ 5 ms (each probe a fresh bridge):\n")
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "N\tpass 2/5 ms\tpacing p50\tp99\tmax ms\tlate br/rx\tgaps\tskips\trx pkts %\tduty\tbridge cores\tgen cores\ttts cores\tother cores\tCPU ms/call·s\tRSS KiB/call\tgor/call\tbusiest other\t")
		for _, p := range r.Search {
			busy := "-"
			if len(p.OtherProcs) > 0 {
				busy = fmt.Sprintf("%s %.2f", p.OtherProcs[0].Comm, p.OtherProcs[0].Cores)
			}
			fmt.Fprintf(tw, "%d\t%s/%s\t%.3f\t%.3f\t%.3f\t%.0f/%d\t%d\t%d\t%.1f\t%.0f%%\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t%.0f\t%.1f\t%s\t\n",
				p.Calls, yesNo(p.Pass), yesNo(p.Pass5), p.PacingP50, p.PacingP99, p.PacingMax, p.BridgeLate, p.RxLate, p.Gaps, p.Skips, pct(p.Packets, p.Expected), 100*p.DutyMeas,
				p.BridgeCPU, p.GenCPU, p.TTSCPU, p.OtherCPU, p.CPUPerCallMs, p.RSSPerCallKiB, p.GorPerCall, busy)
		}
		tw.Flush()
		for _, p := range r.Search {
			if !p.Pass {
				fmt.Fprintf(w, "  N=%d failed: %s\n", p.Calls, p.Why)
			}
		}
		fmt.Fprintf(w, "largest passing N: %d at 2 ms, %d at 5 ms (probes up to %d)\n", r.MaxN, r.MaxN5, r.SearchMax)
	}
	for _, f := range r.Finals[:max(0, len(r.Finals)-1)] {
		fmt.Fprintf(w, "\nfinal run at N=%d (%.0f s): pass=%s %s\n", f.Calls, f.WindowS, yesNo(f.Pass), f.Why)
	}
	if f := r.final(); f != nil {
		printRun(w, "final run", f)
		if len(r.Search) > 0 {
			if r.Confirmed > 0 {
				fmt.Fprintf(w, "  => largest N confirmed by a %.0f s run: %d calls\n", f.WindowS, r.Confirmed)
			} else {
				fmt.Fprintf(w, "  => no N was confirmed by a final run: near the threshold, runs vary\n")
			}
		}
	}
	for _, x := range []struct {
		title string
		p     *runReport
	}{{"G.711 (PCMU) at the final N", r.G711}, {"two-way (Opus, caller audio to listening bots) at the final N", r.TwoWay},
		{"idle calls (no text)", r.Idle}, {"continuous speech (cost)", r.Continuous}} {
		if x.p != nil {
			printRun(w, x.title, x.p)
		}
	}
	if pf := r.Peers; pf != nil {
		fmt.Fprintf(w, "\npeers (peers.sh) at %s:\n", strings.Join(pf.Settings, " "))
		for _, n := range pf.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  peer\tCPU s/audio s\tmarginal (no start-up)\t")
		for _, p := range pf.Peers {
			fmt.Fprintf(tw, "  %s\t%.5f\t%.5f\t\n", p.Name, p.PerAudioS, p.Marginal)
		}
		tw.Flush()
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(w, "\nvoicebridge ÷ peer (CPU per audio-second; < 1 means voicebridge is cheaper):\n")
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  voicebridge basis\tpeer\tvoicebridge\tpeer\tratio\t")
		for _, q := range r.Ratios {
			fmt.Fprintf(tw, "  %s\t%s\t%.5f\t%.5f\t%.2f×\t\n", q.Basis, q.Peer, q.VB, q.Other, q.Ratio)
		}
		tw.Flush()
	}
	printSummary(w, r, now)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

// printSummary writes the capacity and per-call cost, with the issue's
// targets, and the comparison with the last result.
func printSummary(w io.Writer, r *report, now summary) {
	fmt.Fprintf(w, "\ncapacity and cost per call [issue 11's target]:\n")
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	row := func(k, v, target string) { fmt.Fprintf(tw, "  %s\t%s\t%s\n", k, v, target) }
	if len(r.Search) > 0 {
		how := "search probes"
		if f := r.final(); f != nil && r.Confirmed > 0 {
			how = fmt.Sprintf("confirmed over %.0f s, p99 %.3f ms", f.WindowS, f.PacingP99)
		} else if f != nil {
			how = fmt.Sprintf("the search's %d was not confirmed by a final run", r.MaxN)
		}
		row("largest N: pacing p99 ≤ 2 ms, no late frames or gaps", fmt.Sprintf("%d (%s)", now.MaxN2, how), "[≥ 500]")
		row("largest N: pacing p99 ≤ 5 ms, no late frames or gaps", fmt.Sprintf("%d (search probes)", now.MaxN5), "")
	}
	if f := r.final(); f != nil {
		row(fmt.Sprintf("CPU per call, %.0f%% speech, N=%d", 100*f.Duty, f.Calls), fmt.Sprintf("%.3f ms per call-second", f.CPUPerCallMs), "")
		row("memory per call (RSS delta ÷ calls)", fmt.Sprintf("%.3f MiB", f.RSSPerCallKiB/1024), "[≤ 0.6 MiB]")
		row("goroutines per call (go_goroutines delta ÷ calls)", fmt.Sprintf("%.1f", f.GorPerCall), "[≤ 10]")
		row("the rest of the machine during the final run", fmt.Sprintf("%.2f cores; load average %s at start, %s at end", f.OtherCPU, r.Machine.LoadStart, r.Machine.LoadEnd), "")
	}
	if i := r.Idle; i != nil {
		row(fmt.Sprintf("idle call, N=%d", i.Calls), fmt.Sprintf("%.3f ms CPU per call-second, %.3f MiB, %.1f goroutines", i.CPUPerCallMs, i.RSSPerCallKiB/1024, i.GorPerCall), "[≤ 0.5 ms]")
	}
	for _, x := range []struct {
		name string
		p    *runReport
	}{{"G.711 (PCMU)", r.G711}, {"two-way (Opus)", r.TwoWay}} {
		f, p := r.final(), x.p
		if p == nil || f == nil {
			continue
		}
		v := fmt.Sprintf("pacing p50 %.3f p99 %.3f max %.3f ms, late %.0f/%d, gaps %d, %.3f ms CPU per call-second, %.2f bridge cores",
			p.PacingP50, p.PacingP99, p.PacingMax, p.BridgeLate, p.RxLate, p.Gaps, p.CPUPerCallMs, p.BridgeCPU)
		if p.TwoWay {
			v += fmt.Sprintf(", caller frames delivered %.1f%%", pct(p.CallerFrames, p.CallerExpected))
		}
		row(fmt.Sprintf("%s at N=%d, pass=%s (final: p99 %.3f ms, %.3f ms/call·s)", x.name, p.Calls, yesNo(p.Pass), f.PacingP99, f.CPUPerCallMs), v, "[pass at the same N]")
	}
	if c := r.Continuous; c != nil {
		vs := "no peers measured"
		if now.VsFFmpeg > 0 {
			vs = fmt.Sprintf("%.2f× ffmpeg", now.VsFFmpeg)
		}
		row("per speech-second, continuous speech", fmt.Sprintf("%.5f CPU-s, %s", c.CPUPerSpeechS, vs), "[≤ 1.2× ffmpeg]")
	}
	tw.Flush()
	if r.Last != nil {
		printDelta(w, r.Last, now)
	}
}

func printRun(w io.Writer, title string, p *runReport) {
	fmt.Fprintf(w, "\n%s: N=%d calls, %s%s, %.0f s window, duty target %.0f%% measured %.1f%%, pass=%s %s\n",
		title, p.Calls, p.Codec, map[bool]string{true: " two-way"}[p.TwoWay], p.WindowS, 100*p.Duty, 100*p.DutyMeas, yesNo(p.Pass), p.Why)
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
	if p.TwoWay {
		row("caller frames received by bots / expected", fmt.Sprintf("%d / %d (%.1f%%)", p.CallerFrames, p.CallerExpected, pct(p.CallerFrames, p.CallerExpected)))
	}
	if p.Codec == "pcmu" || p.Codec == "pcma" {
		row("G.711: speech and silence frames are the same size", "counting receivers see talkspurt starts only: duty, speech-second and barge-in rows do not apply")
	}
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
	speech := "n/a" // G.711
	if p.CPUPerSpeechS > 0 {
		speech = fmt.Sprintf("%.5f", p.CPUPerSpeechS)
	}
	row("bridge CPU per audio-second: speech / on the wire", fmt.Sprintf("%s / %.5f s", speech, p.CPUPerWireS))
	row("bridge RSS: idle → loaded, per call", fmt.Sprintf("%.1f → %.1f MiB, %.0f KiB", p.RSSBase, p.RSS, p.RSSPerCallKiB))
	row("bridge goroutines: idle → loaded, per call", fmt.Sprintf("%.0f → %.0f, %.1f", p.GoroutinesBase, p.Goroutines, p.GorPerCall))
	row("call setup (all N) / bridge shutdown", fmt.Sprintf("%.1f s (%d errors) / %.1f s", p.SetupS, p.SetupErr, p.ShutdownS))
	if p.FirstErr != "" {
		row("first error", p.FirstErr)
	}
	for _, l := range p.Perf {
		row("bridge CPU (perf)", l)
	}
	tw.Flush()
}
