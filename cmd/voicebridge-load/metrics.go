package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The bridge's metrics this tool reads (bridge/metrics.go), and Go's own.
const (
	metricLate       = "voicebridge_late_frames_total"
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
