package main

import (
	"math"
	"time"
)

// Histogram counts non-negative durations in fixed-width buckets up to a
// limit (beyond it, only in Count) and keeps the exact maximum: what a
// receiver updates per packet (O(1), no allocation). One goroutine owns
// it; Merge combines them afterwards.
type Histogram struct {
	Width   time.Duration
	Buckets []uint32 // Buckets[i] counts [i*Width, (i+1)*Width)
	Count   uint64
	Max     time.Duration
}

// NewHistogram returns a Histogram of width-wide buckets covering [0, limit).
func NewHistogram(width, limit time.Duration) *Histogram {
	return &Histogram{Width: width, Buckets: make([]uint32, int((limit+width-1)/width))}
}

// Add records d; negative values count as zero.
func (h *Histogram) Add(d time.Duration) {
	d = max(d, 0)
	h.Count++
	h.Max = max(h.Max, d)
	if i := int(d / h.Width); i < len(h.Buckets) {
		h.Buckets[i]++
	}
}

// Merge adds o's counts to h (same width and size).
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.Buckets {
		h.Buckets[i] += c
	}
	h.Count += o.Count
	h.Max = max(h.Max, o.Max)
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1) as the upper
// edge of its bucket (at most one Width above the true value), capped at
// Max; 0 if empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	rank := max(uint64(math.Ceil(q*float64(h.Count))), 1)
	var seen uint64
	for i, c := range h.Buckets {
		if seen += uint64(c); seen >= rank {
			return min(time.Duration(i+1)*h.Width, h.Max)
		}
	}
	return h.Max
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
