// Command voicebridge-load measures voicebridge under load on this machine
// and prices it against the peers users would pick instead.
//
// It starts the bridge binary (or targets -url), opens N concurrent calls
// with real Pion receivers on loopback, drives text at a voice-bot duty
// cycle through the HTTP API and the bot WebSocket, and reports pacing
// error (kernel receive timestamps, taken before SRTP decryption), late
// frames, sequence gaps, first-audio and barge-in latency, CPU, memory and
// goroutines per call. It searches for the largest N at which pacing p99
// stays ≤ 2 ms with no late frames, and measures ffmpeg, GStreamer and bare
// libopus encoding the same speech at the same Opus settings.
//
// Everything is bounded in time and count and stays on 127.0.0.0/8.
//
//	go run -tags nolibopusfile ./cmd/voicebridge-load            # the make bench report
//	go run -tags nolibopusfile ./cmd/voicebridge-load -calls 200 -window 60s -peers=false
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
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type options struct {
	URL, Token, Root, Bin, Out string
	PID                        int
	BridgeArgs                 string

	Calls, Confirm                 int
	Start, Max, Probes, Abs        int
	Rel                            float64
	Warmup, Window, FinalWindow    time.Duration
	Duty                           float64
	BargeEvery, Sample, Concurrent int
	Drive, Form                    string
	CostCalls, IdleCalls           int
	Load, Peers, RetryNoisy        bool
	PeerSeconds                    float64
	PeerRepeats                    int
	Timeout                        time.Duration
	CPUProfile                     string
	BatchSleep                     time.Duration
	TTS                            string
	Calibrate                      bool
	Flags                          map[string]string // every flag's value, for the report (never the token)
	Nice                           int
	Perf                           bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("voicebridge-load", flag.ExitOnError)
	fs.StringVar(&o.URL, "url", "", "target a running bridge at this loopback URL instead of starting one (CPU is then read only if -pid is given)")
	fs.IntVar(&o.PID, "pid", 0, "with -url: the bridge's process id, to read its CPU and memory from /proc")
	fs.StringVar(&o.Token, "token", "", "API token of the bridge at -url")
	fs.StringVar(&o.Root, "root", ".", "module root to build ./cmd/voicebridge from")
	fs.StringVar(&o.Bin, "bin", "", "voicebridge binary to run (default: build it into -out/bin)")
	fs.StringVar(&o.TTS, "tts", "separate", "embedded TTS: separate (its own process, \"voicebridge tts-server\", so its CPU is not the bridge's) or inprocess")
	fs.BoolVar(&o.Calibrate, "calibrate", true, "time each utterance on the bridge first (false: estimate 12 characters per second)")
	fs.StringVar(&o.BridgeArgs, "bridge-args", "", "extra flags for the bridge, space separated")
	fs.StringVar(&o.Out, "out", "bench-results", "directory for JSON results and logs")
	fs.IntVar(&o.Calls, "calls", 0, "measure this many calls only (no search)")
	fs.IntVar(&o.Start, "start", 125, "search: first N, doubled while it passes")
	fs.IntVar(&o.Max, "max", 1000, "search: largest N probed")
	fs.IntVar(&o.Probes, "probes", 7, "search: at most this many probes")
	fs.IntVar(&o.Abs, "resolution", 25, "search: stop when the bracket is this narrow (calls) ...")
	fs.Float64Var(&o.Rel, "resolution-rel", 0.125, "... or this fraction of its upper end")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "per run: time after the calls are up before measuring")
	fs.DurationVar(&o.Window, "window", 20*time.Second, "per search probe: measured time")
	fs.BoolVar(&o.RetryNoisy, "retry-noisy", true, "repeat once a failing probe during which other processes used over 0.1 cores")
	fs.IntVar(&o.Confirm, "confirm", 2, "if the final run fails, retry at 90% of N up to this many times")
	fs.DurationVar(&o.FinalWindow, "final-window", 60*time.Second, "final run at the largest passing N: measured time (0: none)")
	fs.Float64Var(&o.Duty, "duty", 0.4, "fraction of the time each bot speaks (0 ≤ duty ≤ 1; 0: idle calls)")
	fs.IntVar(&o.BargeEvery, "barge-every", 4, "interrupt every k-th utterance of a call with clear (0: never)")
	fs.IntVar(&o.Sample, "sample", 4, "calls that decode their Opus to check the audio")
	fs.IntVar(&o.Concurrent, "concurrency", 8, "calls set up at once")
	fs.StringVar(&o.Drive, "drive", "mixed", "how bots speak: http, ws, or mixed (alternating)")
	fs.StringVar(&o.Form, "form", "mixed", "POST /v1/calls form: json, sdp, or mixed (alternating)")
	fs.IntVar(&o.IdleCalls, "idle-calls", 100, "calls in the idle run (no text: what an idle call costs; 0: none)")
	fs.IntVar(&o.CostCalls, "cost-calls", 20, "calls in the continuous-speech cost run (duty 100%; 0: none)")
	fs.BoolVar(&o.Load, "load", true, "run the bridge under load (false: only the peers)")
	fs.BoolVar(&o.Peers, "peers", true, "measure ffmpeg, GStreamer and bare libopus on the same speech")
	fs.Float64Var(&o.PeerSeconds, "peer-seconds", 60, "seconds of speech each peer encodes")
	fs.IntVar(&o.PeerRepeats, "peer-repeats", 3, "repeats per peer (median kept)")
	fs.DurationVar(&o.BatchSleep, "rx-batch", time.Millisecond, "receivers sleep this long when their socket is drained (kernel timestamps keep the clock honest)")
	fs.IntVar(&o.Nice, "nice", 10, "run the load generator at this nice value and the bridge at 0, so that on a saturated machine the bridge gets the CPU (kernel timestamps make the generator's own delays harmless); 0: no change")
	fs.BoolVar(&o.Perf, "perf", true, "sample the bridge with perf(1), when installed, in the final, idle and continuous runs: where its CPU goes")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the generator's own CPU profile here")
	fs.DurationVar(&o.Timeout, "timeout", 12*time.Minute, "hard bound on the whole run")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: voicebridge-load [flags]\n\nLoad, latency and cost report for voicebridge (loopback only).\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	o.Flags = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "token" {
			o.Flags[f.Name] = f.Value.String()
		}
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	go func() {
		// Bounded in time whatever happens: a minute to clean up after a
		// signal or the timeout, then out.
		<-ctx.Done()
		time.Sleep(time.Minute)
		log.Error("voicebridge-load: cleanup took over a minute; exiting")
		os.Exit(3)
	}()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if err := run(ctx, o, log); err != nil {
		log.Error("voicebridge-load", "err", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var errFlags = errors.New("load: bad flags")

func run(ctx context.Context, o options, log *slog.Logger) error {
	if o.Duty < 0 || o.Duty > 1 {
		return fmt.Errorf("%w: -duty must be in [0, 1]", errFlags)
	}
	if o.TTS != "separate" && o.TTS != "inprocess" {
		return fmt.Errorf("%w: -tts %q", errFlags, o.TTS)
	}
	modes, err := parseModes(o.Drive)
	if err != nil {
		return err
	}
	forms, err := parseForms(o.Form)
	if err != nil {
		return err
	}
	if o.Nice != 0 {
		if err := renice(0, o.Nice); err != nil {
			log.Warn("renice", "err", err)
		}
	}
	r := &report{Started: time.Now(), Machine: machine(o.Root)}
	r.Settings = o.Flags
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	bin := o.Bin
	if o.Load && o.URL == "" && bin == "" {
		bin = filepath.Join(out, "bin", "voicebridge")
		log.Info("building the bridge", "bin", bin)
		if err := buildBridge(ctx, o.Root, bin); err != nil {
			return err
		}
	}
	base := runOptions{
		Warmup: o.Warmup, Window: o.Window, Concurrency: o.Concurrent, Sample: o.Sample, BatchSleep: o.BatchSleep,
		Drive: driveConfig{Duty: o.Duty, BargeEvery: o.BargeEvery, Token: o.Token},
		Modes: modes, Forms: forms,
		URL: o.URL, PID: o.PID, Bin: bin, SeparateTTS: o.TTS == "separate", BridgeArgs: strings.Fields(o.BridgeArgs), OutDir: out, Log: log,
	}
	defer func() {
		r.Finished = time.Now()
		r.Machine.LoadEnd = loadavg()
		printReport(os.Stdout, r)
		if name, err := writeJSON(out, r); err != nil {
			log.Error("writing JSON", "err", err)
		} else {
			fmt.Printf("\nJSON: %s\n", name)
		}
	}()

	if o.Load {
		if err := runBridgeLoad(ctx, o, base, r, log); err != nil {
			return err
		}
	}
	if o.Peers {
		for _, e := range []encSettings{bridgeEncoder(), referenceEncoder()} {
			log.Info("peers", "settings", e)
			sp, err := makeSpeech(ctx, filepath.Join(out, "speech"), utteranceTexts, e.InRate, o.PeerSeconds)
			if err != nil {
				r.Errors = append(r.Errors, err.Error())
				break
			}
			r.PeerAudio, r.PeerRepeats = sp.Seconds, o.PeerRepeats
			r.PeerSets = append(r.PeerSets, peerSet{Encoder: e, Peers: runPeers(ctx, e, sp, o.PeerRepeats)})
		}
		r.Ratios = ratios(r)
	}
	return nil
}

func parseModes(s string) ([]driveMode, error) {
	switch s {
	case "http":
		return []driveMode{driveHTTP}, nil
	case "ws":
		return []driveMode{driveWS}, nil
	case "mixed":
		return []driveMode{driveHTTP, driveWS}, nil
	}
	return nil, fmt.Errorf("%w: -drive %q", errFlags, s)
}

func parseForms(s string) ([]signalForm, error) {
	switch s {
	case "json":
		return []signalForm{formJSON}, nil
	case "sdp":
		return []signalForm{formSDP}, nil
	case "mixed":
		return []signalForm{formJSON, formSDP}, nil
	}
	return nil, fmt.Errorf("%w: -form %q", errFlags, s)
}

func machine(root string) machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
