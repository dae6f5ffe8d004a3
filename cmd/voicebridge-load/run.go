package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

// runOptions configure one load run.
type runOptions struct {
	Name       string        // label of the run, for logs and log files
	Calls      int           // concurrent calls
	Warmup     time.Duration // after the last call connected, before measuring
	Window     time.Duration // measured
	Codec      media.Codec   // what the receivers offer
	TwoWay     bool          // the receivers send caller audio and the bots listen
	Drive      driveConfig
	Bin        string // the voicebridge binary, started fresh for the run
	BridgeArgs []string
	LogDir     string
	PerfCmd    []string // if set, run during the window as PerfCmd… PID SECONDS; its output is reported
	Log        *slog.Logger
}

const (
	setupConcurrency = 8                      // calls being set up at once
	rxBatchSleep     = time.Millisecond       // receivers: sleep when the socket is drained
	drainTime        = 100 * time.Millisecond // after the window: the last packets arrive
)

var errRunSetup = errors.New("load: calls could not be set up")

// runLoad performs one run against a fresh bridge. A returned error means
// the run could not be made at all; a run that was made but failed its
// criteria returns a report with Pass false.
func runLoad(ctx context.Context, o runOptions) (*runReport, error) {
	rep := &runReport{Name: o.Name, Calls: o.Calls, Duty: o.Drive.Duty, Codec: o.Codec.String(), TwoWay: o.TwoWay}
	o.Drive.Listen = o.TwoWay
	log := o.Log.With("run", o.Name, "calls", o.Calls)
	tgt, tts, err := startTargets(ctx, o.Bin, o.BridgeArgs, o.LogDir, o.Name)
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
	rep.GoroutinesBase, _ = base.sum(metricGoroutines)
	if rep.RSSBase, err = procRSS(tgt.PID); err != nil {
		return nil, err
	}

	rx, err := newRxSocket(o.Codec, o.TwoWay)
	if err != nil {
		return nil, err
	}
	defer rx.close()
	win := &window{}
	live := setupCalls(ctx, hc, rx, tgt.Base, o.Calls, win, rep)
	defer fewAtATime(context.Background(), len(live), func(i int) {
		live[i].hangup(hc, tgt.Base)
		live[i].close()
	})
	log.Info("calls set up", "ok", len(live), "errors", rep.SetupErr, "seconds", round(rep.SetupS, 1))
	if len(live) == 0 {
		return rep, fmt.Errorf("%w: %s", errRunSetup, rep.FirstErr)
	}

	// Start the bots.
	res := &driveResult{}
	bctx, stopBots := context.WithCancel(ctx)
	bots := make([]*bot, 0, len(live))
	for _, c := range live {
		b := &bot{cfg: &o.Drive, hc: hc, base: tgt.Base, call: c, mode: driveMode(c.Index % 2), res: res, win: win,
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
		bwg.Go(func() { b.run(bctx) })
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
	m0, err := scrapeMetrics(ctx, hc, tgt.Base)
	if err != nil {
		stopAll()
		return rep, err
	}
	pids := []int{tgt.PID, tts.PID, os.Getpid()}
	c0 := sampleCPU(pids...)
	perf := startPerf(ctx, o.PerfCmd, tgt.PID, o.Window)
	win.start.Store(time.Now().UnixNano())
	ok := sleepUntil(ctx, time.Now().Add(o.Window))
	win.end.Store(time.Now().UnixNano())
	c1 := sampleCPU(pids...)
	m1, err := scrapeMetrics(ctx, hc, tgt.Base)
	rss, rssErr := procRSS(tgt.PID)
	stopAll()
	rep.Perf = perf()
	if !ok {
		return rep, ctx.Err()
	}
	if err = errors.Join(err, rssErr); err != nil {
		return rep, err
	}
	time.Sleep(drainTime)
	rx.freeze()

	wall := time.Duration(win.end.Load() - win.start.Load())
	rep.WindowS = wall.Seconds()
	rep.fillCPU(c0, c1, tgt.PID, tts.PID, len(live))
	rep.fillReceivers(live, wall)
	rep.RxDrops = rx.conn.drops.Load()
	rep.fillBridgeMetrics(m0, m1, len(live))
	rep.RSS = rss
	rep.RSSPerCallKiB = (rep.RSS - rep.RSSBase) * 1024 / float64(len(live))
	if rep.SpeechS > 0 && !o.Codec.IsG711() { // G.711: speech time is not seen
		rep.CPUPerSpeechS = rep.BridgeCPU * wall.Seconds() / rep.SpeechS
	}
	// The bots are stopped: their results are final.
	rep.Texts, rep.TextErrs, rep.CallerFrames = res.texts.Load(), res.textErrs.Load(), res.heard.Load()
	rep.FirstErr = cmp.Or(rep.FirstErr, res.firstErr)
	if o.TwoWay {
		rep.CallerExpected = uint64(len(bots)) * uint64(wall/frameDuration)
	}
	rep.judge()
	return rep, nil
}

// setupCalls dials n calls, a few at a time, and returns those that came
// up; rep gets the setup time and errors.
func setupCalls(ctx context.Context, hc *http.Client, rx *rxSocket, base string, n int, win *window, rep *runReport) []*callClient {
	start := time.Now()
	calls := make([]*callClient, n)
	var mu sync.Mutex
	fewAtATime(ctx, n, func(i int) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := dialCall(cctx, hc, rx, base, i, win)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.SetupErr++
			rep.FirstErr = cmp.Or(rep.FirstErr, err.Error())
		}
		calls[i] = c
	})
	rep.SetupS = time.Since(start).Seconds()
	return slices.DeleteFunc(calls, func(c *callClient) bool { return c == nil })
}

// fewAtATime runs f(0) … f(n−1), setupConcurrency at a time, until ctx
// ends, and waits for them.
func fewAtATime(ctx context.Context, n int, f func(i int)) {
	sem := make(chan struct{}, setupConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// startPerf runs cmd… PID SECONDS for the window, if cmd is set. The
// function returned waits for it and returns its output lines, or the
// error.
func startPerf(ctx context.Context, cmd []string, pid int, window time.Duration) func() []string {
	if len(cmd) == 0 {
		return func() []string { return nil }
	}
	var out, stderr bytes.Buffer
	c := exec.CommandContext(ctx, cmd[0], append(cmd[1:], strconv.Itoa(pid), fmt.Sprintf("%.3f", window.Seconds()))...)
	c.Stdout, c.Stderr = &out, &stderr
	if err := c.Start(); err != nil {
		return func() []string { return []string{"perf command: " + err.Error()} }
	}
	return func() []string {
		if err := c.Wait(); err != nil {
			return []string{fmt.Sprintf("perf command: %v: %s", err, strings.TrimSpace(stderr.String()))}
		}
		var lines []string
		for l := range strings.Lines(out.String()) {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		return lines
	}
}
