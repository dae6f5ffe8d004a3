package main

// searchConfig bounds the search for the largest passing call count.
type searchConfig struct {
	Start, Max, Probes int     // first N (doubled while it passes), largest N, probes in all
	Abs                int     // stop bisecting when hi−lo ≤ max(Abs, Rel·hi)
	Rel                float64 //
}

// searchMaxN finds the largest N ≤ cfg.Max (cfg.Start ≥ 1) for which probe
// passes, assuming passing is monotone: it doubles from cfg.Start until a
// probe fails or Max is reached, then bisects between the last pass and the
// first failure. It returns 0 if no N passed. A probe error ends the search
// and is returned with the best N so far.
func searchMaxN(cfg searchConfig, probe func(n int) (bool, error)) (best int, err error) {
	lo, hi, probes := 0, 0, 0 // largest pass; smallest failure (0: none yet)
	try := func(n int) error {
		ok, err := probe(n)
		if err == nil {
			probes++
			if ok {
				lo = n
			} else {
				hi = n
			}
		}
		return err
	}
	for n := cfg.Start; hi == 0 && lo < cfg.Max && probes < cfg.Probes; n = min(2*n, cfg.Max) {
		if err := try(n); err != nil {
			return lo, err
		}
	}
	for hi != 0 && probes < cfg.Probes {
		if gap := hi - lo; gap <= 1 || gap <= cfg.Abs || float64(gap) <= cfg.Rel*float64(hi) {
			break
		}
		if err := try(lo + (hi-lo)/2); err != nil {
			return lo, err
		}
	}
	return lo, nil
}
