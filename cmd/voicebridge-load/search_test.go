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
		best, err := searchMaxN(cfg, func(n int) (bool, error) {
			probed = append(probed, n)
			return n <= limit, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := min(limit, cfg.Max)
		if best > want || (want-best > cfg.Abs && len(probed) < cfg.Probes) {
			t.Errorf("limit %d: best %d (probes %v)", limit, best, probed)
		}
		if len(probed) > cfg.Probes {
			t.Errorf("limit %d: %d probes", limit, len(probed))
		}
		for _, n := range probed {
			if n < 1 || n > cfg.Max || n <= limit && n > best {
				t.Errorf("limit %d: probed %d, best %d", limit, n, best)
			}
		}
	}
}

func TestSearchDoublingThenBisection(t *testing.T) {
	cfg := searchConfig{Start: 125, Max: 1000, Probes: 10, Abs: 25, Rel: 0}
	var probed []int
	best, err := searchMaxN(cfg, func(n int) (bool, error) {
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
	best, _ := searchMaxN(cfg, func(n int) (bool, error) { probed = append(probed, n); return n <= 300, nil })
	// 100 200 400 | 300 (350 then: bracket 300..350, 50 ≤ 43.75? no) 350 325: bracket 300..325 ok
	if best != 300 || len(probed) != 6 {
		t.Errorf("best %d after %v", best, probed)
	}
	// A budget of 3 probes: 100, 200, 400 then stop with the last pass.
	cfg.Probes, probed = 3, nil
	best, _ = searchMaxN(cfg, func(n int) (bool, error) { probed = append(probed, n); return n <= 300, nil })
	if best != 200 || len(probed) != 3 {
		t.Errorf("budget: best %d after %v", best, probed)
	}
}

func TestSearchEdges(t *testing.T) {
	cfg := searchConfig{Start: 50, Max: 400, Probes: 10, Abs: 1}
	best, _ := searchMaxN(cfg, func(n int) (bool, error) { return true, nil })
	if best != 400 {
		t.Errorf("all pass: %d, want Max", best)
	}
	var probed []int
	best, _ = searchMaxN(cfg, func(n int) (bool, error) { probed = append(probed, n); return false, nil })
	if best != 0 || len(probed) == 0 || probed[len(probed)-1] != 1 {
		t.Errorf("none pass: best %d after %v", best, probed)
	}
	boom := errors.New("boom")
	probed = nil
	best, err := searchMaxN(cfg, func(n int) (bool, error) {
		probed = append(probed, n)
		if n > 100 {
			return false, boom
		}
		return true, nil
	})
	if !errors.Is(err, boom) || best != 100 || len(probed) != 3 {
		t.Errorf("error: best %d after %v, err %v", best, probed, err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	good := options{Window: time.Second, Start: 1, Max: 2, Probes: 1, Codec: "opus"}
	for name, change := range map[string]func(*options){
		"no window":       func(o *options) { o.Window = 0 },
		"negative warmup": func(o *options) { o.Warmup = -time.Second },
		"negative calls":  func(o *options) { o.Calls = -1 },
		"start above max": func(o *options) { o.Start = 3 },
		"no probes":       func(o *options) { o.Probes = 0 },
		"unknown codec":   func(o *options) { o.Codec = "g729" },
	} {
		o := good
		change(&o)
		if err := run(context.Background(), o, slog.New(slog.DiscardHandler)); !errors.Is(err, errFlags) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
