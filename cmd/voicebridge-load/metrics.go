package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The bridge's metrics this tool reads (bridge/metrics.go), and Go's own.
const (
	metricLate       = "voicebridge_late_frames_total"
	metricPacing     = "voicebridge_pacing_error_seconds"
	metricAddedFirst = "voicebridge_first_audio_added_latency_seconds"
	metricTTFB       = "voicebridge_tts_ttfb_seconds"
	metricGoroutines = "go_goroutines"
)

// scrape is one parsed /metrics page: metric families by name.
type scrape map[string]*dto.MetricFamily

// parseProm reads the Prometheus text format; the bridge never writes a
// malformed page, so one is an error.
func parseProm(r io.Reader) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("load: /metrics: %w", err)
	}
	return fams, nil
}

func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (scrape, error) {
	b, _, err := request(ctx, hc, http.MethodGet, base+"/metrics", "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return parseProm(bytes.NewReader(b))
}

// sum adds the values of every series of counter, gauge or untyped metric
// name, and reports whether it was exported.
func (sc scrape) sum(name string) (v float64, ok bool) {
	f, ok := sc[name]
	for _, m := range f.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v, ok
}

// bucket is a cumulative histogram bucket: Count observations ≤ LE.
type bucket struct{ LE, Count float64 }

// histogram returns the cumulative buckets of histogram name, summed over
// label sets and sorted by bound, the last +Inf; nil if not exported.
func (sc scrape) histogram(name string) []bucket {
	by := map[float64]float64{}
	for _, m := range sc[name].GetMetric() {
		h := m.GetHistogram()
		for _, b := range h.GetBucket() {
			by[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		if n := len(h.GetBucket()); n == 0 || !math.IsInf(h.GetBucket()[n-1].GetUpperBound(), 1) {
			by[math.Inf(1)] += float64(h.GetSampleCount()) // the count is the +Inf bucket
		}
	}
	var out []bucket
	for le, c := range by {
		out = append(out, bucket{le, c})
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.LE, b.LE) })
	return out
}

// histogramDelta is histogram name of after minus before: a window's
// observations. Bounds missing from before count as zero.
func histogramDelta(after, before scrape, name string) []bucket {
	prev := map[float64]float64{}
	for _, b := range before.histogram(name) {
		prev[b.LE] = b.Count
	}
	out := after.histogram(name)
	for i := range out {
		out[i].Count -= prev[out[i].LE]
	}
	return out
}

// bucketQuantile estimates the q-quantile from cumulative buckets as
// Prometheus' histogram_quantile does: linear inside the bucket holding the
// rank, the first bucket's lower bound 0, the largest finite bound if the
// rank falls in +Inf; NaN if there are no observations.
func bucketQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].Count <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].Count
	prev := bucket{}
	for _, b := range bs {
		switch {
		case b.Count < rank:
			prev = b
			continue
		case math.IsInf(b.LE, 1):
			return prev.LE
		case b.Count == prev.Count:
			return b.LE
		}
		return prev.LE + (b.LE-prev.LE)*(rank-prev.Count)/(b.Count-prev.Count)
	}
	return prev.LE
}
