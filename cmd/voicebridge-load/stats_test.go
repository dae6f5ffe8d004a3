package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank q-quantile of xs: the smallest value
// with at least q·n values at or below it.
func exactQuantile(xs []time.Duration, q float64) time.Duration {
	xs = slices.Sorted(slices.Values(xs))
	return xs[max(int(math.Ceil(q*float64(len(xs)))), 1)-1]
}

func TestHistogramQuantileWithinOneBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram(10*time.Microsecond, 5*time.Millisecond)
	var xs []time.Duration
	for range 10000 {
		// Mostly small, a tail beyond the histogram's range.
		d := time.Duration(rng.ExpFloat64() * float64(300*time.Microsecond))
		xs = append(xs, d)
		h.Add(d)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := exactQuantile(xs, q)
		got := h.Quantile(q)
		if got < exact || got > exact+h.Width {
			t.Errorf("q=%v: histogram %v, exact %v (width %v)", q, got, exact, h.Width)
		}
	}
	if h.Max != slices.Max(xs) {
		t.Errorf("max %v, want %v", h.Max, slices.Max(xs))
	}
	if h.Count != 10000 {
		t.Errorf("count %d", h.Count)
	}
}

func TestHistogramOverflowAndNegative(t *testing.T) {
	h := NewHistogram(time.Millisecond, 10*time.Millisecond)
	h.Add(-time.Second) // counts as zero
	h.Add(50 * time.Millisecond)
	h.Add(70 * time.Millisecond)
	if h.Count != 3 || h.Buckets[0] != 1 {
		t.Fatalf("count %d, bucket0 %d", h.Count, h.Buckets[0])
	}
	if got := h.Quantile(0.5); got != 50*time.Millisecond && got != 70*time.Millisecond {
		// rank 2 is in the overflow: reported as Max.
		t.Errorf("p50 = %v", got)
	}
	if got := h.Quantile(1); got != 70*time.Millisecond {
		t.Errorf("p100 = %v, want the max", got)
	}
	if got := h.Quantile(0.3); got != time.Millisecond {
		t.Errorf("p30 = %v, want 1ms (the upper edge of the zero bucket)", got)
	}
}

func TestHistogramMerge(t *testing.T) {
	a := NewHistogram(time.Millisecond, 10*time.Millisecond)
	b := NewHistogram(time.Millisecond, 10*time.Millisecond)
	for i := range 5 {
		a.Add(time.Duration(i) * time.Millisecond)
		b.Add(time.Duration(i+5) * time.Millisecond)
	}
	b.Add(time.Second)
	a.Merge(b)
	if a.Count != 11 || a.Max != time.Second {
		t.Fatalf("merged: count %d max %v", a.Count, a.Max)
	}
	if got := a.Quantile(0.5); got != 6*time.Millisecond {
		t.Errorf("p50 of 0..9 ms and 1 s = %v, want 6ms (bucket [5,6) upper edge)", got)
	}
	for i := range 10 {
		if a.Buckets[i] != 1 {
			t.Errorf("bucket %d: %d", i, a.Buckets[i])
		}
	}
}
