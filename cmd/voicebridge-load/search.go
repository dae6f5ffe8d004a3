package main

import (
	"errors"
	"fmt"
)

// searchConfig bounds the search for the largest passing call count.
type searchConfig struct {
	Start, Max, Probes int     // first N (doubled while it passes), largest N, probes in all
	Abs                int     // stop bisecting when hi−lo ≤ max(Abs, Rel·hi)
	Rel                float64 //
}

// searchStep is one probe of the search, in order.
type searchStep struct {
	N  int  `json:"n"`
	OK bool `json:"ok"`
}

var errSearchConfig = errors.New("load: bad search config")

// searchMaxN finds the largest N ≤ cfg.Max for which probe passes, assuming
// passing is monotone: it doubles from cfg.Start until a probe fails or Max
// is reached, then bisects between the last pass and the first failure. It
// returns 0 if no N passed. A probe error ends the search and is returned
// with the steps so far.
func searchMaxN(cfg searchConfig, probe func(n int) (bool, error)) (best int, steps []searchStep, err error) {
	if cfg.Start < 1 || cfg.Max < cfg.Start || cfg.Probes < 1 {
		return 0, nil, fmt.Errorf("%w: %+v", errSearchConfig, cfg)
	}
	lo, hi := 0, 0 // largest pass; smallest failure (0: none yet)
	try := func(n int) error {
		ok, err := probe(n)
		if err == nil {
			steps = append(steps, searchStep{N: n, OK: ok})
			if ok {
				lo = n
			} else {
				hi = n
			}
		}
		return err
	}
	for n := cfg.Start; hi == 0 && lo < cfg.Max && len(steps) < cfg.Probes; n = min(2*n, cfg.Max) {
		if err := try(n); err != nil {
			return lo, steps, err
		}
	}
	for hi != 0 && len(steps) < cfg.Probes {
		if gap := hi - lo; gap <= 1 || gap <= cfg.Abs || float64(gap) <= cfg.Rel*float64(hi) {
			break
		}
		if err := try(lo + (hi-lo)/2); err != nil {
			return lo, steps, err
		}
	}
	return lo, steps, nil
}
