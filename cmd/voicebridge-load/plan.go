package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

const (
	// noisyCores: a run during which other processes used more CPU than
	// this was disturbed; a failing search probe is then repeated once.
	noisyCores = 0.1
	// confirmTries: if the final run fails, retry at 90% of N up to this
	// many times.
	confirmTries = 2
)

// runBridgeLoad calibrates, searches for the largest N passing at 2 ms and
// at 5 ms, confirms the first with a longer final run, measures G.711 and
// two-way calls at the final N, then idle calls and continuous speech,
// filling r.
func runBridgeLoad(ctx context.Context, o options, base runOptions, r *report, log *slog.Logger) error {
	log.Info("calibrating utterance durations")
	us, err := calibrate(ctx, base, utteranceTexts)
	if err != nil {
		return err
	}
	r.Utterances = us
	base.Drive.Utterances = us

	run := func(name string, n int, window time.Duration, perf bool, drive driveConfig, codec media.Codec, twoWay bool) (*runReport, error) {
		ro := base
		ro.Name, ro.Calls, ro.Window, ro.Drive, ro.Codec, ro.TwoWay = name, n, window, drive, codec, twoWay
		if !perf {
			ro.PerfCmd = nil
		}
		// Room for every call plus a margin, whatever the default.
		ro.BridgeArgs = append([]string{"-max-calls", fmt.Sprint(n + 16)}, ro.BridgeArgs...)
		log.Info("run", "name", name, "calls", n, "window", window)
		rep, err := runLoad(ctx, ro)
		if rep != nil {
			log.Info("result", "name", name, "calls", n, "pass", rep.Pass, "p99_ms", rep.PacingP99, "why", rep.Why)
		}
		return rep, err
	}
	// The search, final, idle and continuous runs use -codec and -two-way.
	runAs := func(name string, n int, window time.Duration, perf bool, drive driveConfig) (*runReport, error) {
		return run(name, n, window, perf, drive, base.Codec, base.TwoWay)
	}

	final := o.Calls
	if o.Calls == 0 {
		// One probe per N, shared by both searches.
		probes := map[int]*runReport{}
		probe := func(n int) (*runReport, error) {
			if rep := probes[n]; rep != nil {
				return rep, nil
			}
			rep, err := runAs(fmt.Sprintf("search-%d", n), n, o.Window, false, base.Drive)
			if err == nil && !rep.Pass && rep.OtherCPU > noisyCores {
				// Another process took the CPU meanwhile: what failed may
				// be the neighbour, not the bridge. Once more.
				log.Info("probe disturbed by other processes; repeating", "calls", n, "other_cores", rep.OtherCPU)
				r.Search = append(r.Search, rep)
				rep, err = runAs(fmt.Sprintf("search-%d-again", n), n, o.Window, false, base.Drive)
			}
			if rep != nil {
				r.Search = append(r.Search, rep)
			}
			if err != nil && rep != nil && errors.Is(err, errRunSetup) {
				err = nil // no call came up: a failure at this N
			}
			if err == nil {
				probes[n] = rep
			}
			return rep, err
		}
		cfg := searchConfig{Start: o.Start, Max: o.Max, Probes: o.Probes, Abs: 25, Rel: 0.125}
		r.SearchMax = o.Max
		r.MaxN, _, err = searchMaxN(cfg, func(n int) (bool, error) {
			rep, err := probe(n)
			return err == nil && rep.Pass, err
		})
		if err != nil {
			return err
		}
		cfg.Start = max(cfg.Start, r.MaxN)
		r.MaxN5, _, err = searchMaxN(cfg, func(n int) (bool, error) {
			rep, err := probe(n)
			return err == nil && rep.Pass5, err
		})
		if err != nil {
			return err
		}
		final = r.MaxN
	}
	if final > 0 && (o.FinalWindow > 0 || o.Calls > 0) {
		w, tries := o.FinalWindow, 1+confirmTries
		if o.Calls > 0 {
			w, tries = o.Window, 1
		}
		// The search's probes are short; the final run is longer. If it does
		// not pass, step down by a tenth and try again, so that the N
		// reported held for a whole final window.
		for try := range tries {
			rep, err := runAs(fmt.Sprintf("final-%d", final), final, w, true, base.Drive)
			if err != nil {
				return err
			}
			r.Finals = append(r.Finals, rep)
			if rep.Pass {
				r.Confirmed = final
				break
			}
			if try == tries-1 {
				break
			}
			final = final * 9 / 10
		}
	}
	if f := r.final(); f != nil && o.Calls == 0 {
		// What G.711 and caller audio cost the speaking path, at the same N
		// (issues 12 and 13).
		if r.G711, err = run(fmt.Sprintf("g711-%d", f.Calls), f.Calls, o.FinalWindow, false, base.Drive, media.CodecPCMU, false); err != nil {
			return err
		}
		if r.TwoWay, err = run(fmt.Sprintf("two-way-%d", f.Calls), f.Calls, o.FinalWindow, false, base.Drive, media.CodecOpus, true); err != nil {
			return err
		}
	}
	if o.IdleCalls > 0 {
		d := base.Drive
		d.Duty = 0
		rep, err := runAs(fmt.Sprintf("idle-%d", o.IdleCalls), o.IdleCalls, o.Window, true, d)
		if err != nil {
			return err
		}
		r.Idle = rep
	}
	if o.CostCalls > 0 {
		d := base.Drive
		d.Duty, d.BargeEvery = 1, 0
		rep, err := runAs(fmt.Sprintf("continuous-%d", o.CostCalls), o.CostCalls, o.Window, true, d)
		if err != nil {
			return err
		}
		r.Continuous = rep
	}
	return nil
}
