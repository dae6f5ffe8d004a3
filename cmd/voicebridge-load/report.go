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
	Started    time.Time    `json:"started"`
	Finished   time.Time    `json:"finished"`
	Machine    machineInfo  `json:"machine"`
	Config     string       `json:"config"`
	Utterances []utterance  `json:"utterances"`
	Search     []*runReport `json:"search"`
	MaxN       int          `json:"max_calls_passing"`     // search: pacing p99 ≤ 2 ms
	MaxN5      int          `json:"max_calls_passing_5ms"` // search: pacing p99 ≤ 5 ms
	SearchMax  int          `json:"search_max"`
	Finals     []*runReport `json:"finals,omitempty"`    // every final run, in order
	Confirmed  int          `json:"max_calls_confirmed"` // N whose final run passed; 0 if none
	G711       *runReport   `json:"g711,omitempty"`      // at the final N, PCMU
	TwoWay     *runReport   `json:"two_way,omitempty"`   // at the final N, Opus with caller audio
	Continuous *runReport   `json:"continuous_speech,omitempty"`
	Idle       *runReport   `json:"idle,omitempty"`
	Peers      *peersFile   `json:"peers,omitempty"`
	Last       *summary     `json:"last_result,omitempty"`
	Errors     []string     `json:"errors,omitempty"`
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

func yesNo(b bool) string { return map[bool]string{true: "yes", false: "NO"}[b] }

func pct(a, b uint64) float64 { return 100 * float64(a) / float64(max(b, 1)) }

// table is the report's one table printer: rows of cells, indented, in
// aligned columns once flushed.
type table struct{ *tabwriter.Writer }

func newTable(w io.Writer) table { return table{tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)} }

func (t table) row(cells ...string) { fmt.Fprintf(t, "  %s\n", strings.Join(cells, "\t")) }

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
		t := newTable(w)
		t.row("N", "pass 2/5 ms", "pacing p50", "p99", "max ms", "late br/rx", "gaps", "skips", "rx pkts %", "duty",
			"bridge cores", "gen cores", "tts cores", "other cores", "CPU ms/call·s", "RSS KiB/call", "gor/call")
		for _, p := range r.Search {
			t.row(fmt.Sprint(p.Calls), yesNo(p.Pass)+"/"+yesNo(p.Pass5), f3(p.PacingP50), f3(p.PacingP99), f3(p.PacingMax),
				fmt.Sprintf("%.0f/%d", p.BridgeLate, p.RxLate), fmt.Sprint(p.Gaps), fmt.Sprint(p.Skips),
				fmt.Sprintf("%.1f", pct(p.Packets, p.Expected)), fmt.Sprintf("%.0f%%", 100*p.DutyMeas),
				f2(p.BridgeCPU), f2(p.GenCPU), f2(p.TTSCPU), f2(p.OtherCPU), f3(p.CPUPerCallMs),
				fmt.Sprintf("%.0f", p.RSSPerCallKiB), fmt.Sprintf("%.1f", p.GorPerCall))
		}
		t.Flush()
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
		t := newTable(w)
		t.row("peer", "CPU s/audio s", "marginal (no start-up)", "voicebridge continuous speech ÷ peer (< 1: voicebridge is cheaper)")
		for _, p := range pf.Peers {
			vs := "-"
			if q := r.vs(p); q > 0 {
				vs = fmt.Sprintf("%.5f ÷ %.5f = %.2f×", r.Continuous.CPUPerSpeechS, p.PerAudioS, q)
			}
			t.row(p.Name, fmt.Sprintf("%.5f", p.PerAudioS), fmt.Sprintf("%.5f", p.Marginal), vs)
		}
		t.Flush()
	}
	printSummary(w, r, now)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

// printSummary writes the capacity and per-call cost, with the issue's
// targets, and the comparison with the last result.
func printSummary(w io.Writer, r *report, now summary) {
	fmt.Fprintf(w, "\ncapacity and cost per call [issue 11's target]:\n")
	t := newTable(w)
	if len(r.Search) > 0 {
		how := "search probes"
		if f := r.final(); f != nil && r.Confirmed > 0 {
			how = fmt.Sprintf("confirmed over %.0f s, p99 %.3f ms", f.WindowS, f.PacingP99)
		} else if f != nil {
			how = fmt.Sprintf("the search's %d was not confirmed by a final run", r.MaxN)
		}
		t.row("largest N: pacing p99 ≤ 2 ms, no late frames or gaps", fmt.Sprintf("%d (%s)", now.MaxN2, how), "[≥ 500]")
		t.row("largest N: pacing p99 ≤ 5 ms, no late frames or gaps", fmt.Sprintf("%d (search probes)", now.MaxN5), "")
	}
	f := r.final()
	if f != nil {
		t.row(fmt.Sprintf("CPU per call, %.0f%% speech, N=%d", 100*f.Duty, f.Calls), fmt.Sprintf("%.3f ms per call-second", f.CPUPerCallMs), "")
		t.row("memory per call (RSS delta ÷ calls)", fmt.Sprintf("%.3f MiB", f.RSSPerCallKiB/1024), "[≤ 0.6 MiB]")
		t.row("goroutines per call (go_goroutines delta ÷ calls)", fmt.Sprintf("%.1f", f.GorPerCall), "[≤ 10]")
		t.row("the rest of the machine during the final run", fmt.Sprintf("%.2f cores; load average %s at start, %s at end", f.OtherCPU, r.Machine.LoadStart, r.Machine.LoadEnd), "")
	}
	if i := r.Idle; i != nil {
		t.row(fmt.Sprintf("idle call, N=%d", i.Calls), fmt.Sprintf("%.3f ms CPU per call-second, %.3f MiB, %.1f goroutines", i.CPUPerCallMs, i.RSSPerCallKiB/1024, i.GorPerCall), "[≤ 0.5 ms]")
	}
	for _, x := range []struct {
		name string
		p    *runReport
	}{{"G.711 (PCMU)", r.G711}, {"two-way (Opus)", r.TwoWay}} {
		if p := x.p; p != nil && f != nil {
			v := fmt.Sprintf("pacing p99 %.3f ms (final %.3f), %.3f ms CPU per call-second (final %.3f)", p.PacingP99, f.PacingP99, p.CPUPerCallMs, f.CPUPerCallMs)
			if p.TwoWay {
				v += fmt.Sprintf(", caller frames delivered %.1f%%", pct(p.CallerFrames, p.CallerExpected))
			}
			t.row(fmt.Sprintf("%s at N=%d, pass=%s", x.name, p.Calls, yesNo(p.Pass)), v, "[pass at the same N]")
		}
	}
	if c := r.Continuous; c != nil {
		vs := "no peers measured"
		if now.VsFFmpeg > 0 {
			vs = fmt.Sprintf("%.2f× ffmpeg", now.VsFFmpeg)
		}
		t.row("per speech-second, continuous speech", fmt.Sprintf("%.5f CPU-s, %s", c.CPUPerSpeechS, vs), "[≤ 1.2× ffmpeg]")
	}
	t.Flush()
	if r.Last != nil {
		printDelta(w, r.Last, now)
	}
}

func printRun(w io.Writer, title string, p *runReport) {
	fmt.Fprintf(w, "\n%s: N=%d calls, %s%s, %.0f s window, duty target %.0f%% measured %.1f%%, pass=%s %s\n",
		title, p.Calls, p.Codec, map[bool]string{true: " two-way"}[p.TwoWay], p.WindowS, 100*p.Duty, 100*p.DutyMeas, yesNo(p.Pass), p.Why)
	t := newTable(w)
	t.row("pacing error |inter-arrival − 20 ms| (kernel rx time)", fmt.Sprintf("p50 %.3f  p99 %.3f  max %.3f ms", p.PacingP50, p.PacingP99, p.PacingMax))
	t.row("late frames (bridge counter / rx > 20 ms behind grid)", fmt.Sprintf("%.0f / %d", p.BridgeLate, p.RxLate))
	t.row("packets received / expected, seq gaps (our socket's drops), reordered, ts skips",
		fmt.Sprintf("%d / %d, %d (%d), %d, %d", p.Packets, p.Expected, p.Gaps, p.RxDrops, p.Reorder, p.Skips))
	t.row("texts sent / errors (the whole run)", fmt.Sprintf("%d / %d", p.Texts, p.TextErrs))
	if p.TwoWay {
		t.row("caller frames received by bots / expected", fmt.Sprintf("%d / %d (%.1f%%)", p.CallerFrames, p.CallerExpected, pct(p.CallerFrames, p.CallerExpected)))
	}
	if p.Codec == "pcmu" || p.Codec == "pcma" {
		t.row("G.711: speech and silence frames are the same size", "counting receivers see talkspurt starts only: duty and speech-second rows do not apply")
	}
	t.row("CPU, cores busy: bridge / load generator / TTS server / rest of machine", fmt.Sprintf("%.3f / %.3f / %.3f / %.3f", p.BridgeCPU, p.GenCPU, p.TTSCPU, p.OtherCPU))
	t.row("bridge CPU per call", fmt.Sprintf("%.3f ms per call-second (%.2f%% of a core)", p.CPUPerCallMs, p.CPUPerCallMs/10))
	if p.CPUPerSpeechS > 0 { // not G.711's
		t.row("bridge CPU per speech-second", fmt.Sprintf("%.5f s", p.CPUPerSpeechS))
	}
	t.row("bridge RSS: idle → loaded, per call", fmt.Sprintf("%.1f → %.1f MiB, %.0f KiB", p.RSSBase, p.RSS, p.RSSPerCallKiB))
	t.row("bridge goroutines: idle → loaded, per call", fmt.Sprintf("%.0f → %.0f, %.1f", p.GoroutinesBase, p.Goroutines, p.GorPerCall))
	t.row("call setup (all N) / bridge shutdown", fmt.Sprintf("%.1f s (%d errors) / %.1f s", p.SetupS, p.SetupErr, p.ShutdownS))
	if p.FirstErr != "" {
		t.row("first error", p.FirstErr)
	}
	for _, l := range p.Perf {
		t.row("bridge CPU (perf)", l)
	}
	t.Flush()
}
