// Command voicebridge-load measures voicebridge under load on this machine.
//
// It builds and starts the bridge (a fresh one for every run, with the
// embedded TTS in its own process), opens N concurrent calls with real
// Pion receivers on loopback, drives text at a voice-bot duty cycle through
// the HTTP API and the bot WebSocket, and reports pacing error (kernel
// receive timestamps, taken before SRTP decryption), late frames, sequence
// gaps, and CPU, memory and goroutines per call. It searches for the
// largest N at which pacing p99 stays ≤ 2 ms (and ≤ 5 ms) with no late
// frames, confirms it with a longer run, and prices idle calls and
// continuous speech, the latter against the peers that peers.sh measured.
//
// Everything is bounded in time and count and stays on 127.0.0.0/8.
//
//	make bench                                                    # the full report
//	go run -tags nolibopusfile ./cmd/voicebridge-load -calls 200 -window 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"github.com/voicebridge/voicebridge/media"
)

type options struct {
	Out                         string
	Calls, Start, Max, Probes   int
	Warmup, Window, FinalWindow time.Duration
	IdleCalls, CostCalls        int
	BridgeArgs                  string
	Peers, Perf, Last           string
	Codec                       string
	TwoWay                      bool
	Timeout                     time.Duration
}

// duty is the fraction of the time each bot speaks: the voice-bot
// workload. The idle and continuous-speech runs use 0 and 1.
const duty = 0.4

// generatorNice is this tool's nice value (the bridge runs at 0), so that
// on a saturated machine the bridge gets the CPU; kernel receive timestamps
// make the generator's own delays harmless.
const generatorNice = 10

func main() {
	var o options
	fs := flag.NewFlagSet("voicebridge-load", flag.ExitOnError)
	encoder := fs.Bool("encoder", false, "print voicebridge's encoder settings as shell assignments, for peers.sh, and exit")
	fs.StringVar(&o.Out, "out", "bench-results", "directory for JSON results, logs and the bridge binary")
	fs.IntVar(&o.Calls, "calls", 0, "measure this many calls only (no search)")
	fs.IntVar(&o.Start, "start", 125, "search: first N, doubled while it passes")
	fs.IntVar(&o.Max, "max", 1000, "search: largest N probed")
	fs.IntVar(&o.Probes, "probes", 7, "search: at most this many probes per pacing limit (2 ms, 5 ms)")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "per run: time after the calls are up before measuring")
	fs.DurationVar(&o.Window, "window", 20*time.Second, "per run: measured time (search probes, idle and continuous runs)")
	fs.DurationVar(&o.FinalWindow, "final-window", 60*time.Second, "final run at the largest passing N: measured time (0: none)")
	fs.IntVar(&o.IdleCalls, "idle-calls", 100, "calls in the idle run (no text: what an idle call costs; 0: none)")
	fs.IntVar(&o.CostCalls, "cost-calls", 20, "calls in the continuous-speech cost run (duty 100%; 0: none)")
	fs.StringVar(&o.BridgeArgs, "bridge-args", "", "extra flags for the bridge, space separated")
	fs.StringVar(&o.Peers, "peers", "", "the peers' costs, as written by peers.sh (empty: no comparison)")
	fs.StringVar(&o.Perf, "perf", "", "command run as CMD PID SECONDS during the final, idle and continuous runs; its output is reported (e.g. \"bash cmd/voicebridge-load/peers.sh perf\")")
	fs.StringVar(&o.Last, "last", "", "summary of the previous result: compared with, then replaced by this one's (e.g. cmd/voicebridge-load/last-result.json)")
	fs.StringVar(&o.Codec, "codec", "opus", "what the receivers offer: opus, pcmu or pcma (a full run adds a pcmu run at the final N)")
	fs.BoolVar(&o.TwoWay, "two-way", false, "receivers send caller audio and every bot listens (a full run adds a two-way run at the final N)")
	fs.DurationVar(&o.Timeout, "timeout", 25*time.Minute, "hard bound on the whole run")
	_ = fs.Parse(os.Args[1:])
	if *encoder {
		fmt.Println(strings.Join(encoderEnv(), "\n"))
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	go func() {
		// Bounded in time whatever happens: a minute to clean up, then out.
		<-ctx.Done()
		time.Sleep(time.Minute)
		log.Error("voicebridge-load: cleanup took over a minute; exiting")
		os.Exit(3)
	}()
	if err := run(ctx, o, log); err != nil {
		log.Error("voicebridge-load", "err", err)
		os.Exit(1)
	}
}

var errFlags = errors.New("load: bad flags")

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	switch {
	case o.Window <= 0 || o.Warmup < 0 || o.FinalWindow < 0:
		return fmt.Errorf("%w: -window must be positive, -warmup and -final-window not negative", errFlags)
	case o.Calls < 0 || o.IdleCalls < 0 || o.CostCalls < 0:
		return fmt.Errorf("%w: -calls, -idle-calls and -cost-calls must not be negative", errFlags)
	case o.Calls == 0 && (o.Start < 1 || o.Max < o.Start || o.Probes < 1):
		return fmt.Errorf("%w: the search needs 1 ≤ -start ≤ -max and -probes ≥ 1", errFlags)
	}
	codec, err := media.ParseCodec(o.Codec)
	if err != nil {
		return fmt.Errorf("%w: -codec: %v", errFlags, err)
	}
	r := &report{Started: time.Now(), Machine: machine(),
		Config: fmt.Sprintf("duty %.0f%%, window %v, final %v, idle %d, continuous %d, codec %v, two-way %v, bridge-args %q",
			100*duty, o.Window, o.FinalWindow, o.IdleCalls, o.CostCalls, codec, o.TwoWay, o.BridgeArgs)}
	if o.Peers != "" {
		if r.Peers, err = readPeers(o.Peers); err != nil {
			return err
		}
	}
	if r.Last, err = readSummary(o.Last); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := renice(0, generatorNice); err != nil {
		log.Warn("renice", "err", err)
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	bin := filepath.Join(out, "bin", "voicebridge")
	log.Info("building the bridge", "bin", bin)
	if err := buildBridge(ctx, ".", bin); err != nil {
		return err
	}
	base := runOptions{
		Warmup: o.Warmup, Window: o.Window, Codec: codec, TwoWay: o.TwoWay, Drive: driveConfig{Duty: duty},
		Bin: bin, BridgeArgs: strings.Fields(o.BridgeArgs), LogDir: filepath.Join(out, "logs"), PerfCmd: strings.Fields(o.Perf), Log: log,
	}
	defer func() {
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		r.Finished = time.Now()
		r.Machine.LoadEnd = loadavg()
		now := summarizeReport(r)
		printReport(os.Stdout, r, now)
		if name, werr := writeJSON(out, r); werr != nil {
			log.Error("writing JSON", "err", werr)
		} else {
			fmt.Printf("\nJSON: %s\n", name)
		}
		if o.Last != "" && err == nil && o.Calls == 0 { // a whole report, not one N
			if werr := writeSummary(o.Last, now); werr != nil {
				log.Error("writing the summary", "err", werr)
			}
		}
	}()
	return runBridgeLoad(ctx, o, base, r, log)
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadavg()}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if ci, err := fs.CPUInfo(); err == nil && len(ci) > 0 {
			m.Model = ci[0].ModelName
		}
	}
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.Kernel = "Linux " + strings.TrimSpace(string(b))
	b, _ = exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	m.Commit = strings.TrimSpace(string(b))
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
