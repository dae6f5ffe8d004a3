package main

import (
	"errors"
	"fmt"
)

// searchConfig bounds the search for the largest passing call count.
type searchConfig struct {
	Start  int     // first N probed; doubled while it passes
	Max    int     // N is never probed above this
	Probes int     // at most this many probes in all
	Abs    int     // stop bisecting when hi−lo ≤ max(Abs, Rel·hi)
	Rel    float64 //
}

// searchStep is one probe of the search, in order.
type searchStep struct {
	N  int  `json:"n"`
	OK bool `json:"ok"`
}

var errSearchConfig = errors.New("load: bad search config")

// searchMaxN finds the largest N ≤ cfg.Max for which probe passes, assuming
// passing is monotone (if N passes, every smaller N does): it doubles from
// cfg.Start until a probe fails or Max is reached, then bisects between the
// last pass and the first failure. It returns 0 if no N passed. A probe error
// ends the search and is returned with the steps so far.
func searchMaxN(cfg searchConfig, probe func(n int) (bool, error)) (best int, steps []searchStep, err error) {
	if cfg.Start < 1 || cfg.Max < cfg.Start || cfg.Probes < 1 {
		return 0, nil, fmt.Errorf("%w: %+v", errSearchConfig, cfg)
	}
	run := func(n int) (bool, error) {
		ok, err := probe(n)
		if err == nil {
			steps = append(steps, searchStep{N: n, OK: ok})
		}
		return ok, err
	}
	lo, hi := 0, 0 // largest pass; smallest failure (0: none yet)
	for n := cfg.Start; len(steps) < cfg.Probes; n = min(2*n, cfg.Max) {
		ok, err := run(n)
		if err != nil {
			return lo, steps, err
		}
		if !ok {
			hi = n
			break
		}
		lo = n
		if n == cfg.Max {
			return lo, steps, nil
		}
	}
	if hi == 0 { // out of probes while still passing
		return lo, steps, nil
	}
	for len(steps) < cfg.Probes && !closeEnough(lo, hi, cfg) {
		mid := lo + (hi-lo)/2
		ok, err := run(mid)
		if err != nil {
			return lo, steps, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, steps, nil
}

func closeEnough(lo, hi int, cfg searchConfig) bool {
	gap := hi - lo
	return gap <= 1 || gap <= cfg.Abs || float64(gap) <= cfg.Rel*float64(hi)
}
