package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// noisyCores: a run during which other processes used more CPU than this
// was disturbed.
const noisyCores = 0.1

// runBridgeLoad calibrates, searches for the largest passing N, and runs
// the final and continuous-speech runs, filling r.
func runBridgeLoad(ctx context.Context, o options, base runOptions, r *report, log *slog.Logger) error {
	us := estimateUtterances(utteranceTexts)
	if o.Calibrate {
		log.Info("calibrating utterance durations")
		var err error
		if us, err = calibrate(ctx, base, utteranceTexts); err != nil {
			r.Errors = append(r.Errors, err.Error())
			return err
		}
		r.Calibrated = true
	}
	r.Utterances = us
	base.Drive.Utterances = us

	probe := func(name string, n int, window time.Duration) (*runReport, error) {
		ro := base
		ro.Calls, ro.Window, ro.Name = n, window, name
		ro.Perf = o.Perf && strings.HasPrefix(name, "final")
		// Room for every call plus a margin, whatever the default.
		ro.BridgeArgs = append([]string{"-max-calls", fmt.Sprint(n + 16)}, ro.BridgeArgs...)
		if o.URL != "" {
			ro.BridgeArgs = nil
		}
		log.Info("run", "name", name, "calls", n, "window", window)
		rep, err := runLoad(ctx, ro)
		if rep != nil {
			log.Info("result", "name", name, "calls", n, "pass", rep.Pass, "p99_ms", rep.PacingP99, "why", rep.Why)
		}
		return rep, err
	}

	final := o.Calls
	if o.Calls == 0 {
		r.SearchMax = o.Max
		cfg := searchConfig{Start: o.Start, Max: o.Max, Probes: o.Probes, Abs: o.Abs, Rel: o.Rel}
		best, steps, err := searchMaxN(cfg, func(n int) (bool, error) {
			rep, err := probe(fmt.Sprintf("search-%d", n), n, o.Window)
			if rep != nil {
				r.Search = append(r.Search, rep)
			}
			if err != nil && rep != nil && errors.Is(err, errRunSetup) {
				return false, nil // no call came up: a failure at this N
			}
			if err != nil {
				return false, err
			}
			if !rep.Pass && rep.OtherCPU > noisyCores && o.RetryNoisy {
				// Another process took the CPU meanwhile: what failed may
				// be the neighbour, not the bridge. Once more.
				log.Info("probe disturbed by other processes; repeating", "calls", n, "other_cores", rep.OtherCPU)
				rep, err = probe(fmt.Sprintf("search-%d-again", n), n, o.Window)
				if rep != nil {
					r.Search = append(r.Search, rep)
				}
				if err != nil {
					return false, err
				}
			}
			return rep.Pass, nil
		})
		r.Steps, r.MaxN = steps, best
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			return err
		}
		final = best
	}
	if final > 0 && (o.FinalWindow > 0 || o.Calls > 0) {
		w := o.FinalWindow
		tries := 1 + max(0, o.Confirm)
		if o.Calls > 0 {
			w, tries = o.Window, 1
		}
		// The search's probes are short; the final run is longer. If it does
		// not pass, step down by a tenth and try again (at most o.Confirm
		// times), so that the N reported held for a whole final window.
		for try := range tries {
			rep, err := probe(fmt.Sprintf("final-%d", final), final, w)
			if rep != nil {
				r.Finals = append(r.Finals, rep)
				r.Final = rep
			}
			if err != nil {
				r.Errors = append(r.Errors, err.Error())
				break
			}
			r.Machine.OtherCPU = rep.OtherCPU
			if rep.Pass {
				r.Confirmed = final
				break
			}
			if try == tries-1 || o.Calls > 0 {
				break
			}
			final = final * 9 / 10
		}
	}
	if o.IdleCalls > 0 {
		ro := base
		ro.Drive.Duty = 0
		ro.Calls, ro.Window, ro.Name = o.IdleCalls, o.Window, fmt.Sprintf("idle-%d", o.IdleCalls)
		ro.Perf = o.Perf
		log.Info("run", "name", ro.Name)
		rep, err := runLoad(ctx, ro)
		r.Idle = rep
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}
	if o.CostCalls > 0 {
		ro := base
		ro.Drive.Duty = 1
		ro.Drive.BargeEvery = 0
		ro.Calls, ro.Window, ro.Name = o.CostCalls, o.Window, fmt.Sprintf("continuous-%d", o.CostCalls)
		ro.Perf = o.Perf
		log.Info("run", "name", ro.Name)
		rep, err := runLoad(ctx, ro)
		r.Continuous = rep
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}
	return nil
}

// ratios divides voicebridge's cost per audio-second by each peer's.
func ratios(r *report) []ratio {
	type basis struct {
		name string
		v    float64
	}
	var bs []basis
	if c := r.Continuous; c != nil && c.CPUPerSpeechS > 0 {
		bs = append(bs, basis{fmt.Sprintf("continuous speech, %d calls, per speech-second", c.Calls), c.CPUPerSpeechS})
	}
	if f := r.Final; f != nil && f.CPUPerWireS > 0 {
		bs = append(bs, basis{fmt.Sprintf("%.0f%% duty, %d calls, per call-second", 100*f.Duty, f.Calls), f.CPUPerWireS})
	}
	if len(r.PeerSets) == 0 {
		return nil
	}
	var out []ratio
	for _, b := range bs {
		for _, p := range r.PeerSets[0].Peers {
			if p.Err != "" || p.PerAudioS <= 0 {
				continue
			}
			out = append(out, ratio{Basis: b.name, Peer: p.Name, VB: round(b.v, 5), Other: p.PerAudioS, Ratio: round(b.v/p.PerAudioS, 3)})
		}
	}
	return out
}
