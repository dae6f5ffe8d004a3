package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestSearchFindsThreshold(t *testing.T) {
	cfg := searchConfig{Start: 125, Max: 1000, Probes: 12, Abs: 10, Rel: 0}
	for _, limit := range []int{1, 124, 125, 126, 249, 250, 400, 501, 777, 999, 1000, 5000} {
		var probed []int
		best, steps, err := searchMaxN(cfg, func(n int) (bool, error) {
			probed = append(probed, n)
			return n <= limit, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := min(limit, cfg.Max)
		if best > want || (want-best > cfg.Abs && len(steps) < cfg.Probes) {
			t.Errorf("limit %d: best %d (probes %v)", limit, best, probed)
		}
		if len(steps) != len(probed) || len(steps) > cfg.Probes {
			t.Errorf("limit %d: %d steps for %d probes", limit, len(steps), len(probed))
		}
		for _, s := range steps {
			if s.OK != (s.N <= limit) || s.N < 1 || s.N > cfg.Max {
				t.Errorf("limit %d: bad step %+v", limit, s)
			}
			if s.OK && s.N > best {
				t.Errorf("limit %d: passing %d above best %d", limit, s.N, best)
			}
		}
	}
}

func TestSearchDoublingThenBisection(t *testing.T) {
	cfg := searchConfig{Start: 125, Max: 1000, Probes: 10, Abs: 25, Rel: 0}
	var probed []int
	best, _, err := searchMaxN(cfg, func(n int) (bool, error) {
		probed = append(probed, n)
		return n <= 600, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{125, 250, 500, 1000, 750, 625, 562, 593, 609}
	if len(probed) != len(want) {
		t.Fatalf("probed %v, want %v", probed, want)
	}
	for i := range want {
		if probed[i] != want[i] {
			t.Fatalf("probed %v, want %v", probed, want)
		}
	}
	if best != 593 {
		t.Errorf("best %d, want 593", best)
	}
}

func TestSearchRelativeResolutionAndBudget(t *testing.T) {
	// Rel 1/8: stop when the bracket is within 12.5% of its top.
	cfg := searchConfig{Start: 100, Max: 1000, Probes: 20, Rel: 0.125}
	var probed []int
	best, _, _ := searchMaxN(cfg, func(n int) (bool, error) { probed = append(probed, n); return n <= 300, nil })
	// 100 200 400 | 300 (350 then: bracket 300..350, 50 ≤ 43.75? no) 350 325: bracket 300..325 ok
	if best != 300 || len(probed) != 6 {
		t.Errorf("best %d after %v", best, probed)
	}
	// A budget of 3 probes: 100, 200, 400 then stop with the last pass.
	cfg.Probes = 3
	best, steps, _ := searchMaxN(cfg, func(n int) (bool, error) { return n <= 300, nil })
	if best != 200 || len(steps) != 3 {
		t.Errorf("budget: best %d steps %v", best, steps)
	}
}

func TestSearchEdges(t *testing.T) {
	cfg := searchConfig{Start: 50, Max: 400, Probes: 10, Abs: 1}
	best, _, _ := searchMaxN(cfg, func(n int) (bool, error) { return true, nil })
	if best != 400 {
		t.Errorf("all pass: %d, want Max", best)
	}
	best, steps, _ := searchMaxN(cfg, func(n int) (bool, error) { return false, nil })
	if best != 0 || len(steps) == 0 || steps[len(steps)-1].N != 1 {
		t.Errorf("none pass: best %d steps %v", best, steps)
	}
	boom := errors.New("boom")
	best, steps, err := searchMaxN(cfg, func(n int) (bool, error) {
		if n > 100 {
			return false, boom
		}
		return true, nil
	})
	if !errors.Is(err, boom) || best != 100 || len(steps) != 2 {
		t.Errorf("error: best %d steps %v err %v", best, steps, err)
	}
	for _, bad := range []searchConfig{{Start: 0, Max: 10, Probes: 1}, {Start: 20, Max: 10, Probes: 1}, {Start: 1, Max: 10}} {
		if _, _, err := searchMaxN(bad, func(int) (bool, error) { return true, nil }); !errors.Is(err, errSearchConfig) {
			t.Errorf("%+v: err %v", bad, err)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	good := options{Window: time.Second, Duty: 0.4, Start: 1, Max: 2, Probes: 1, Codec: "opus"}
	for name, change := range map[string]func(*options){
		"duty > 1":        func(o *options) { o.Duty = 1.5 },
		"negative duty":   func(o *options) { o.Duty = -0.1 },
		"no window":       func(o *options) { o.Window = 0 },
		"negative warmup": func(o *options) { o.Warmup = -time.Second },
		"negative calls":  func(o *options) { o.Calls = -1 },
		"start above max": func(o *options) { o.Start = 3 },
		"no probes":       func(o *options) { o.Probes = 0 },
		"unknown codec":   func(o *options) { o.Codec = "g729" },
	} {
		o := good
		change(&o)
		if err := run(context.Background(), o, nil, slog.New(slog.DiscardHandler)); !errors.Is(err, errFlags) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
