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
	// noisyCores: other processes used more CPU than this during a failed
	// search probe: it is repeated once (the neighbour may be to blame).
	noisyCores = 0.1
	// confirmTries: a failing final run is retried at 90% of N this often.
	confirmTries = 2
)

// runBridgeLoad calibrates, searches for the largest N passing at 2 ms and
// at 5 ms, confirms the first with a longer final run, measures G.711 and
// two-way calls at the final N, then idle calls and continuous speech.
func runBridgeLoad(ctx context.Context, o options, base runOptions, r *report, log *slog.Logger) (err error) {
	log.Info("calibrating utterance durations")
	if r.Utterances, err = calibrate(ctx, base, utteranceTexts); err != nil {
		return err
	}
	base.Drive.Utterances = r.Utterances
	// run makes one run of n calls; set changes its options.
	run := func(name string, n int, window time.Duration, perf bool, set func(*runOptions)) (*runReport, error) {
		ro := base
		ro.Name, ro.Calls, ro.Window = fmt.Sprintf("%s-%d", name, n), n, window
		if !perf {
			ro.PerfCmd = nil
		}
		if set != nil {
			set(&ro)
		}
		// Room for every call plus a margin, whatever the default.
		ro.BridgeArgs = append([]string{"-max-calls", fmt.Sprint(n + 16)}, ro.BridgeArgs...)
		log.Info("run", "name", ro.Name, "window", window)
		rep, err := runLoad(ctx, ro)
		if rep != nil {
			log.Info("result", "name", ro.Name, "pass", rep.Pass, "p99_ms", rep.PacingP99, "why", rep.Why)
		}
		return rep, err
	}

	final := o.Calls
	if o.Calls == 0 {
		probes := map[int]*runReport{} // one probe per N, for both searches
		probe := func(n int) (*runReport, error) {
			if rep := probes[n]; rep != nil {
				return rep, nil
			}
			rep, err := run("search", n, o.Window, false, nil)
			if err == nil && !rep.Pass && rep.OtherCPU > noisyCores {
				log.Info("probe disturbed by other processes; repeating", "calls", n, "other_cores", rep.OtherCPU)
				r.Search = append(r.Search, rep)
				rep, err = run("search-again", n, o.Window, false, nil)
			}
			if rep != nil {
				r.Search = append(r.Search, rep)
			}
			if errors.Is(err, errRunSetup) {
				err = nil // no call came up: a failure at this N
			}
			if err == nil {
				probes[n] = rep
			}
			return rep, err
		}
		cfg := searchConfig{Start: o.Start, Max: o.Max, Probes: o.Probes, Abs: 25, Rel: 0.125}
		r.SearchMax = o.Max
		if r.MaxN, err = searchMaxN(cfg, func(n int) (bool, error) {
			rep, err := probe(n)
			return err == nil && rep.Pass, err
		}); err != nil {
			return err
		}
		cfg.Start = max(cfg.Start, r.MaxN)
		if r.MaxN5, err = searchMaxN(cfg, func(n int) (bool, error) {
			rep, err := probe(n)
			return err == nil && rep.Pass5, err
		}); err != nil {
			return err
		}
		final = r.MaxN
	}
	if final > 0 && (o.FinalWindow > 0 || o.Calls > 0) {
		w, tries := o.FinalWindow, 1+confirmTries
		if o.Calls > 0 {
			w, tries = o.Window, 1
		}
		// The final run is longer than the probes. If it fails, step down
		// by a tenth, so that the N reported held for a whole final window.
		for try := 0; try < tries && r.Confirmed == 0; try, final = try+1, final*9/10 {
			rep, err := run("final", final, w, true, nil)
			if err != nil {
				return err
			}
			r.Finals = append(r.Finals, rep)
			if rep.Pass {
				r.Confirmed = final
			}
		}
	}
	if f := r.final(); f != nil && o.Calls == 0 {
		// What G.711 and caller audio cost the speaking path at the same N.
		if r.G711, err = run("g711", f.Calls, o.FinalWindow, false, func(ro *runOptions) { ro.Codec, ro.TwoWay = media.CodecPCMU, false }); err != nil {
			return err
		}
		if r.TwoWay, err = run("two-way", f.Calls, o.FinalWindow, false, func(ro *runOptions) { ro.Codec, ro.TwoWay = media.CodecOpus, true }); err != nil {
			return err
		}
	}
	if o.IdleCalls > 0 {
		if r.Idle, err = run("idle", o.IdleCalls, o.Window, true, func(ro *runOptions) { ro.Drive.Duty = 0 }); err != nil {
			return err
		}
	}
	if o.CostCalls > 0 {
		r.Continuous, err = run("continuous", o.CostCalls, o.Window, true, func(ro *runOptions) { ro.Drive.Duty = 1 })
	}
	return err
}
