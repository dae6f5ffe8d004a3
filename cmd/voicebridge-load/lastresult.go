package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// summary is the few numbers of a result that the repository keeps
// (cmd/voicebridge-load/last-result.json, via -last), so that the next run
// shows what changed. Zero means not measured.
type summary struct {
	Date         string  `json:"date"`
	Commit       string  `json:"commit"`
	Machine      string  `json:"machine"`
	Config       string  `json:"config"`              // the settings: runs under others are not compared
	MaxN2        int     `json:"max_calls_p99_2ms"`   // confirmed by the final run if there was one
	MaxN5        int     `json:"max_calls_p99_5ms"`   // from the search's probes
	P99Ms        float64 `json:"final_pacing_p99_ms"` // the final run's
	CPUPerCallMs float64 `json:"cpu_ms_per_call_s"`   // final run, at its duty cycle
	IdleCPUMs    float64 `json:"idle_cpu_ms_per_call_s"`
	RSSPerCall   float64 `json:"rss_mib_per_call"` // final run
	GorPerCall   float64 `json:"goroutines_per_call"`
	SpeechCPU    float64 `json:"cpu_s_per_speech_s"` // continuous speech
	VsFFmpeg     float64 `json:"speech_vs_ffmpeg"`   // SpeechCPU ÷ ffmpeg's per audio-second
	// G.711 (PCMU) and two-way (Opus) runs at the final N.
	G711P99      float64 `json:"g711_pacing_p99_ms,omitempty"`
	G711CPUMs    float64 `json:"g711_cpu_ms_per_call_s,omitempty"`
	TwoWayP99    float64 `json:"two_way_pacing_p99_ms,omitempty"`
	TwoWayCPUMs  float64 `json:"two_way_cpu_ms_per_call_s,omitempty"`
	TwoWayCaller float64 `json:"two_way_caller_frames_delivered,omitempty"` // fraction
}

// summarizeReport picks the summary's numbers out of r.
func summarizeReport(r *report) summary {
	s := summary{
		Date: r.Started.UTC().Format("2006-01-02 15:04 UTC"), Commit: r.Machine.Commit,
		Machine: fmt.Sprintf("%d × %s", r.Machine.CPUs, r.Machine.Model), Config: r.Config,
		MaxN2: r.Confirmed, MaxN5: r.MaxN5,
	}
	if len(r.Search) > 0 && len(r.Finals) == 0 {
		s.MaxN2 = r.MaxN // no final run: the search's answer
	}
	if f := r.final(); f != nil {
		s.P99Ms, s.CPUPerCallMs = f.PacingP99, round(f.CPUPerCallMs, 3)
		s.RSSPerCall, s.GorPerCall = round(f.RSSPerCallKiB/1024, 3), round(f.GorPerCall, 1)
	}
	if g := r.G711; g != nil {
		s.G711P99, s.G711CPUMs = g.PacingP99, round(g.CPUPerCallMs, 3)
	}
	if t := r.TwoWay; t != nil {
		s.TwoWayP99, s.TwoWayCPUMs = t.PacingP99, round(t.CPUPerCallMs, 3)
		s.TwoWayCaller = round(pct(t.CallerFrames, t.CallerExpected)/100, 4)
	}
	if r.Idle != nil {
		s.IdleCPUMs = round(r.Idle.CPUPerCallMs, 3)
	}
	if r.Continuous != nil {
		s.SpeechCPU = round(r.Continuous.CPUPerSpeechS, 5)
	}
	if r.Peers != nil {
		for _, p := range r.Peers.Peers {
			if p.Name == "ffmpeg" {
				s.VsFFmpeg = r.vs(p)
			}
		}
	}
	return s
}

// readSummary reads the summary at path (none if path is empty).
func readSummary(path string) (*summary, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("load: %s: %w", path, err)
	}
	return &s, nil
}

func writeSummary(path string, s summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printDelta writes one line comparing now with the last result.
func printDelta(w io.Writer, last *summary, now summary) {
	fmt.Fprintf(w, "  vs last result (%s, commit %s): ", last.Date, last.Commit)
	if last.Config != now.Config || last.Machine != now.Machine {
		fmt.Fprintf(w, "not comparable: it ran on %s with %s\n", last.Machine, last.Config)
		return
	}
	var parts []string
	add := func(name string, a, b float64, format string) {
		if a <= 0 || b <= 0 {
			return
		}
		parts = append(parts, fmt.Sprintf("%s "+format+" → "+format+" (%+.0f%%)", name, a, b, 100*(b-a)/a))
	}
	add("max N", float64(last.MaxN2), float64(now.MaxN2), "%.0f")
	add("max N at 5 ms", float64(last.MaxN5), float64(now.MaxN5), "%.0f")
	add("CPU/call", last.CPUPerCallMs, now.CPUPerCallMs, "%.2f ms")
	add("idle CPU/call", last.IdleCPUMs, now.IdleCPUMs, "%.2f ms")
	add("RSS/call", last.RSSPerCall, now.RSSPerCall, "%.2f MiB")
	add("goroutines/call", last.GorPerCall, now.GorPerCall, "%.1f")
	add("× ffmpeg", last.VsFFmpeg, now.VsFFmpeg, "%.2f")
	add("G.711 p99", last.G711P99, now.G711P99, "%.2f ms")
	add("G.711 CPU/call", last.G711CPUMs, now.G711CPUMs, "%.2f ms")
	add("two-way p99", last.TwoWayP99, now.TwoWayP99, "%.2f ms")
	add("two-way CPU/call", last.TwoWayCPUMs, now.TwoWayCPUMs, "%.2f ms")
	add("caller frames delivered", last.TwoWayCaller, now.TwoWayCaller, "%.4f")
	if len(parts) == 0 {
		parts = []string{"nothing measured in both"}
	}
	fmt.Fprintln(w, strings.Join(parts, ", "))
}
