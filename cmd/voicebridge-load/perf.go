package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// share is a part of the bridge's CPU samples.
type share struct {
	Name    string  `json:"name"`
	Percent float64 `json:"percent"`
}

// profile is where the bridge's CPU went during a window, from perf(1)
// sampling the process (cpu-clock, so it works without hardware counters).
type profile struct {
	Samples int     `json:"samples"`
	DSOs    []share `json:"dsos"`
	Symbols []share `json:"symbols"`
	Err     string  `json:"error,omitempty"`
}

// perfRecorder samples one process with perf for a while.
type perfRecorder struct {
	path string
	cmd  *exec.Cmd
}

// startPerf starts "perf record" on pid for d, writing to path. It returns
// nil if perf is not installed.
func startPerf(ctx context.Context, pid int, d time.Duration, path string) *perfRecorder {
	if _, err := exec.LookPath("perf"); err != nil || pid <= 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, "perf", "record", "-q", "-F", "250", "-e", "cpu-clock", "-p", strconv.Itoa(pid),
		"-o", path, "--", "sleep", fmt.Sprintf("%.3f", d.Seconds()))
	if err := cmd.Start(); err != nil {
		return nil
	}
	return &perfRecorder{path: path, cmd: cmd}
}

// finish waits for perf and summarizes its samples.
func (p *perfRecorder) finish(ctx context.Context) *profile {
	if p == nil {
		return nil
	}
	out := &profile{}
	if err := p.cmd.Wait(); err != nil {
		out.Err = "perf record: " + err.Error()
		return out
	}
	report := func(sort string) ([]share, int, error) {
		b, err := exec.CommandContext(ctx, "perf", "report", "-i", p.path, "--no-children", "--sort", sort, "--stdio").Output()
		if err != nil {
			return nil, 0, err
		}
		s, n := parsePerfReport(string(b), 12)
		return s, n, nil
	}
	var err error
	if out.DSOs, out.Samples, err = report("dso"); err != nil {
		out.Err = "perf report: " + err.Error()
		return out
	}
	out.Symbols, _, _ = report("sym")
	return out
}

// parsePerfReport reads "perf report --stdio" output: the sample count from
// its "# Samples: N" header and the first max rows of "  12.34%  name".
func parsePerfReport(text string, max int) ([]share, int) {
	var out []share
	samples := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# Samples: "); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				samples, _ = strconv.Atoi(strings.TrimRight(f[0], "KM"))
				switch {
				case strings.HasSuffix(f[0], "K"):
					samples *= 1000
				case strings.HasSuffix(f[0], "M"):
					samples *= 1000000
				}
			}
			continue
		}
		if line == "" || line[0] == '#' || len(out) >= max {
			continue
		}
		pct, name, ok := strings.Cut(line, "%")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil {
			continue
		}
		out = append(out, share{Name: strings.TrimSpace(name), Percent: v})
	}
	return out, samples
}
