package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The bridge's metrics this tool reads (bridge/metrics.go), and the Go
// client's own.
const (
	metricLate       = "voicebridge_late_frames_total"
	metricPacing     = "voicebridge_pacing_error_seconds"
	metricAddedFirst = "voicebridge_first_audio_added_latency_seconds"
	metricTTFB       = "voicebridge_tts_ttfb_seconds"
	metricGoroutines = "go_goroutines"
)

// scrape is one parsed /metrics page: metric families by name.
type scrape map[string]*dto.MetricFamily

// parseProm reads the Prometheus text exposition format. A malformed page
// is an error: the bridge's exporter never writes one.
func parseProm(r io.Reader) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("load: /metrics: %w", err)
	}
	return fams, nil
}

// scrapeMetrics fetches and parses base/metrics.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (scrape, error) {
	b, _, err := request(ctx, hc, http.MethodGet, base+"/metrics", "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return parseProm(bytes.NewReader(b))
}

// sum adds the values of every series of the counter, gauge or untyped
// metric name, and reports whether it was exported.
func (sc scrape) sum(name string) (float64, bool) {
	f, ok := sc[name]
	if !ok {
		return 0, false
	}
	var v float64
	for _, m := range f.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v, true
}

// bucket is a cumulative histogram bucket: Count observations ≤ LE.
type bucket struct {
	LE    float64
	Count float64
}

// histogram returns the cumulative buckets of histogram name (summed across
// label sets), sorted by bound, the last being +Inf; nil if not exported.
func (sc scrape) histogram(name string) []bucket {
	f, ok := sc[name]
	if !ok {
		return nil
	}
	by := map[float64]float64{}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		inf := false
		for _, b := range h.GetBucket() {
			by[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf { // the count is the +Inf bucket
			by[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	out := make([]bucket, 0, len(by))
	for le, c := range by {
		out = append(out, bucket{le, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

// histogramDelta is histogram name of after minus before: the observations
// of a window. Bounds missing from before count as zero.
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

// bucketQuantile estimates the q-quantile from cumulative buckets the way
// Prometheus' histogram_quantile does: linear interpolation inside the
// bucket that holds the rank, the lower bound of the first bucket taken as
// 0. If the rank falls in +Inf it returns the largest finite bound. NaN if
// there are no observations.
func bucketQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].Count <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].Count
	prevLE, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				return prevLE
			}
			if b.Count == prevCount {
				return b.LE
			}
			return prevLE + (b.LE-prevLE)*(rank-prevCount)/(b.Count-prevCount)
		}
		prevLE, prevCount = b.LE, b.Count
	}
	return prevLE
}
