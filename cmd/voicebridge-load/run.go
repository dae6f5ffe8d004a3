package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// runOptions configure one load run.
type runOptions struct {
	Calls       int
	Warmup      time.Duration // after the last call connected, before measuring
	Window      time.Duration // measured
	Concurrency int           // calls being set up at once
	Sample      int           // calls that decode their audio
	BatchSleep  time.Duration // receivers: sleep when the socket is drained
	Perf        bool          // sample the bridge with perf(1) during the window, if installed
	Drive       driveConfig
	Modes       []driveMode // bot modes, by call index modulo len
	Forms       []signalForm

	// Either URL (an existing bridge) or Bin (started fresh for the run).
	URL        string
	PID        int // of the bridge at URL, if known
	Bin        string
	BridgeArgs []string
	// SeparateTTS runs the embedded TTS as its own process ("voicebridge
	// tts-server") so that its synthesis is not counted as the bridge's CPU.
	SeparateTTS bool
	OutDir      string
	Name        string // label of the run, for logs
	Log         *slog.Logger
}

var errRunSetup = errors.New("load: calls could not be set up")

// runLoad performs one run. A returned error means the run could not be
// made at all; a run that was made but failed its criteria returns a
// report with Pass false.
func runLoad(ctx context.Context, o runOptions) (*runReport, error) {
	rep := &runReport{Name: o.Name, Calls: o.Calls, Duty: o.Drive.Duty, Events: map[string]int{}}
	log := o.Log.With("run", o.Name, "calls", o.Calls)
	tgt, tts, err := startTarget(ctx, o, o.Name)
	if err != nil {
		return nil, err
	}
	defer func() {
		rep.ShutdownS = tgt.stop().Seconds()
		tts.stop()
	}()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()

	time.Sleep(500 * time.Millisecond)
	base, err := scrapeMetrics(ctx, hc, tgt.Base)
	if err != nil {
		return nil, err
	}
	rep.GoroutinesBase, _ = base.sum("go_goroutines")
	rssBase := procRSS(tgt.PID, base)
	rep.RSSBase = rssBase / (1 << 20)

	// Set up the calls.
	rx, err := newRxSocket(o.BatchSleep)
	if err != nil {
		return nil, err
	}
	defer rx.close()
	win := &window{}
	setupStart := time.Now()
	calls := make([]*callClient, o.Calls)
	var mu sync.Mutex
	var setupErrs []string
	sem := make(chan struct{}, max(1, o.Concurrency))
	var wg sync.WaitGroup
	for i := range calls {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := dialCall(cctx, hc, rx, tgt.Base, o.Drive.Token, i, o.Forms[i%len(o.Forms)], i < o.Sample, win)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				setupErrs = append(setupErrs, err.Error())
				return
			}
			calls[i] = c
		}()
	}
	wg.Wait()
	rep.SetupS = time.Since(setupStart).Seconds()
	rep.SetupErr = len(setupErrs)
	if len(setupErrs) > 0 {
		rep.FirstErr = setupErrs[0]
	}
	live := calls[:0:0]
	for _, c := range calls {
		if c != nil {
			live = append(live, c)
		}
	}
	defer func() {
		// Hang up and close, a few at a time.
		var wg sync.WaitGroup
		for _, c := range live {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c.hangup(hc, tgt.Base, o.Drive.Token)
				c.close()
			}()
		}
		wg.Wait()
	}()
	log.Info("calls set up", "ok", len(live), "errors", len(setupErrs), "seconds", round(rep.SetupS, 1))
	if len(live) == 0 {
		return rep, fmt.Errorf("%w: %s", errRunSetup, rep.FirstErr)
	}

	// Start the bots.
	res := &driveResult{Events: map[string]int{}}
	bctx, stopBots := context.WithCancel(ctx)
	bots := make([]*bot, 0, len(live))
	for _, c := range live {
		b := &bot{cfg: &o.Drive, hc: hc, base: tgt.Base, call: c, mode: o.Modes[c.Index%len(o.Modes)], res: res,
			rng: rand.New(rand.NewPCG(uint64(c.Index), 7))}
		if err := b.open(ctx); err != nil {
			res.fail("open", err)
			rep.BotErrs++
			continue
		}
		bots = append(bots, b)
	}
	var bwg sync.WaitGroup
	for _, b := range bots {
		bwg.Add(1)
		go func() { defer bwg.Done(); b.run(bctx) }()
	}
	stopAll := func() {
		stopBots()
		bwg.Wait()
		for _, b := range bots {
			b.close()
		}
	}

	// Warm up, then measure.
	if !sleepUntil(ctx, time.Now().Add(o.Warmup)) {
		stopAll()
		return rep, ctx.Err()
	}
	for _, c := range live {
		c.Stats.takeFirstAudio()
		c.Stats.takeToSilence()
	}
	res.mu.Lock()
	res.Barge, res.BargeNA, res.Texts, res.TextErrs, res.Missed = nil, 0, 0, 0, 0
	res.mu.Unlock()
	m0, err := scrapeMetrics(ctx, hc, tgt.Base)
	if err != nil {
		stopAll()
		return rep, err
	}
	c0 := sampleCPU(tgt.PID)
	t0 := sampleCPU(tts.PID)
	var pr *perfRecorder
	if o.Perf {
		pr = startPerf(ctx, tgt.PID, o.Window, filepath.Join(o.OutDir, "logs", o.Name+".perf.data"))
	}
	win.start.Store(time.Now().UnixNano())
	ok := sleepUntil(ctx, time.Now().Add(o.Window))
	win.end.Store(time.Now().UnixNano())
	c1 := sampleCPU(tgt.PID)
	t1 := sampleCPU(tts.PID)
	m1, err := scrapeMetrics(ctx, hc, tgt.Base)
	stopAll()
	if !ok {
		return rep, ctx.Err()
	}
	if err != nil {
		return rep, err
	}
	// Let receivers drain the window's last packets, then stop accounting.
	time.Sleep(100 * time.Millisecond)
	unknown := rx.unknown.Load()
	rx.freeze()

	wall := time.Duration(win.end.Load() - win.start.Load())
	rep.WindowS = wall.Seconds()
	if t0.ok && t1.ok {
		rep.TTSCPU = ((t1.bridge.Self + t1.bridge.Children) - (t0.bridge.Self + t0.bridge.Children)).Seconds() / wall.Seconds()
	}
	rep.fillCPU(c0, c1, wall, len(live), tgt.PID, tts.PID)
	rep.fillReceivers(live, wall)
	rep.RxDrops, rep.RxUnknown = rx.conn.drops.Load(), unknown
	rep.fillBridgeMetrics(m0, m1)
	rep.Profile = pr.finish(ctx)
	rep.RSS = procRSS(tgt.PID, m1) / (1 << 20)
	rep.RSSPerCallKiB = (rep.RSS - rep.RSSBase) * 1024 / float64(len(live))
	rep.Goroutines, _ = m1.sum("go_goroutines")
	rep.GorPerCall = (rep.Goroutines - rep.GoroutinesBase) / float64(len(live))
	if rep.SpeechS > 0 && rep.BridgeCPU > 0 {
		rep.CPUPerSpeechS = rep.BridgeCPU * wall.Seconds() / rep.SpeechS
		rep.CPUPerWireS = rep.BridgeCPU * wall.Seconds() / (float64(rep.Packets) * frameDuration.Seconds())
	}

	var fa []time.Duration
	for _, c := range live {
		fa = append(fa, c.Stats.takeFirstAudio()...)
	}
	rep.TextToSpeech = summarize(fa)
	var ts []time.Duration
	for _, c := range live {
		ts = append(ts, c.Stats.takeToSilence()...)
	}
	rep.ClearToSilence = summarize(ts)
	res.mu.Lock()
	rep.Barge = summarize(res.Barge)
	rep.BargeNA, rep.Texts, rep.TextErrs, rep.Missed = res.BargeNA, res.Texts, res.TextErrs, res.Missed
	for k, v := range res.Events {
		rep.Events[k] = v
	}
	if rep.FirstErr == "" {
		rep.FirstErr = res.FirstErr
	}
	res.mu.Unlock()
	rep.judge()
	return rep, nil
}

// startTarget starts what a run measures: the TTS process if separate, then
// the bridge; or nothing, when the bridge is at o.URL. The targets returned
// are never nil; stop them when done.
func startTarget(ctx context.Context, o runOptions, name string) (bridge, tts *target, err error) {
	tts = &target{}
	if o.URL != "" {
		return &target{Base: o.URL, PID: o.PID}, tts, nil
	}
	args := o.BridgeArgs
	if o.SeparateTTS {
		tts, err = startTTS(ctx, o.Bin, filepath.Join(o.OutDir, "logs", name+"-tts.log"))
		if err != nil {
			return nil, nil, err
		}
		args = append([]string{"-tts-url", tts.Base}, args...)
	}
	bridge, err = startBridge(ctx, o.Bin, args, filepath.Join(o.OutDir, "logs", name+".log"))
	if err != nil {
		tts.stop()
		return nil, nil, err
	}
	return bridge, tts, nil
}
