package main

import (
	"math"
	"slices"
	"time"
)

// Histogram counts non-negative durations in fixed-width buckets up to a
// limit, with one overflow bucket, and keeps the exact maximum. It is what a
// receiver updates per packet: no allocation, O(1). A Histogram is owned by
// one goroutine; Merge combines them afterwards.
type Histogram struct {
	Width   time.Duration // bucket width
	Buckets []uint32      // Buckets[i] counts [i*Width, (i+1)*Width)
	Over    uint64        // values ≥ len(Buckets)*Width
	Count   uint64
	Max     time.Duration
}

// NewHistogram returns a Histogram of width-wide buckets covering [0, limit).
func NewHistogram(width, limit time.Duration) *Histogram {
	return &Histogram{Width: width, Buckets: make([]uint32, int((limit+width-1)/width))}
}

// Add records d; negative values count as zero.
func (h *Histogram) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.Count++
	if d > h.Max {
		h.Max = d
	}
	i := int(d / h.Width)
	if i >= len(h.Buckets) {
		h.Over++
		return
	}
	h.Buckets[i]++
}

// Merge adds o's counts to h. Both must have the same width and size.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.Buckets {
		h.Buckets[i] += c
	}
	h.Over += o.Over
	h.Count += o.Count
	h.Max = max(h.Max, o.Max)
}

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank method,
// reported as the upper edge of the bucket that holds it (so never below
// the true value by more than nothing and never above it by more than one
// Width), capped at Max. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Buckets {
		seen += uint64(c)
		if seen >= rank {
			return min(time.Duration(i+1)*h.Width, h.Max)
		}
	}
	return h.Max
}

// percentile returns the q-quantile of xs by the nearest-rank method (the
// smallest value with at least q·n values at or below it). xs is sorted in
// place. It returns 0 for an empty slice.
func percentile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	rank := int(math.Ceil(q * float64(len(xs))))
	rank = min(max(rank, 1), len(xs))
	return xs[rank-1]
}

// Summary is a latency distribution as reported.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize sorts xs and returns its p50, p99 and max in milliseconds.
func summarize(xs []time.Duration) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := Summary{N: len(xs), P50: ms(percentile(xs, 0.50)), P99: ms(percentile(xs, 0.99))}
	s.Max = ms(xs[len(xs)-1])
	return s
}
