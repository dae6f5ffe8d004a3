package main

import (
	"math"
	"strings"
	"testing"
)

const exposition = `# HELP voicebridge_frames_sent_total Frames sent.
# TYPE voicebridge_frames_sent_total counter
voicebridge_frames_sent_total{kind="speech"} 100
voicebridge_frames_sent_total{kind="silence"} 400
# TYPE voicebridge_late_frames_total counter
voicebridge_late_frames_total 3
# TYPE go_goroutines gauge
go_goroutines 42
untyped_thing{a="x\"y,z"} 7 1700000000000
# TYPE voicebridge_first_audio_added_latency_seconds histogram
voicebridge_first_audio_added_latency_seconds_bucket{le="0.005"} 2
voicebridge_first_audio_added_latency_seconds_bucket{le="0.01"} 6
voicebridge_first_audio_added_latency_seconds_bucket{le="0.025"} 10
voicebridge_first_audio_added_latency_seconds_bucket{le="+Inf"} 10
voicebridge_first_audio_added_latency_seconds_sum 0.1
voicebridge_first_audio_added_latency_seconds_count 10
`

func TestParseProm(t *testing.T) {
	sc, err := parseProm(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want float64
	}{{"voicebridge_frames_sent_total", 500}, {metricLate, 3}, {metricGoroutines, 42}, {"untyped_thing", 7}} {
		if v, ok := sc.sum(c.name); !ok || v != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, v, ok, c.want)
		}
	}
	if _, ok := sc.sum("absent"); ok {
		t.Error("absent metric found")
	}
	for _, bad := range []string{"broken{le=\"1\" 5\n", "nonumber abc\n"} {
		if _, err := parseProm(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestHistogramAndQuantile(t *testing.T) {
	sc, _ := parseProm(strings.NewReader(exposition))
	bs := sc.histogram(metricAddedFirst)
	if len(bs) != 4 || !math.IsInf(bs[3].LE, 1) || bs[3].Count != 10 || bs[0] != (bucket{0.005, 2}) {
		t.Fatalf("buckets %+v", bs)
	}
	for _, c := range []struct{ q, want float64 }{
		{0.1, 0.0025},  // rank 1 of 2 in [0, 5ms]
		{0.5, 0.00875}, // rank 5: 3 of 4 into (5ms, 10ms]
		{1.0, 0.025},
	} {
		if got := bucketQuantile(c.q, bs); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("q %v: %v, want %v", c.q, got, c.want)
		}
	}
	// Observations above the last finite bound: the bound is reported.
	over := []bucket{{0.1, 1}, {math.Inf(1), 10}}
	if got := bucketQuantile(0.99, over); got != 0.1 {
		t.Errorf("+Inf rank: %v", got)
	}
	if !math.IsNaN(bucketQuantile(0.5, []bucket{{1, 0}, {math.Inf(1), 0}})) || !math.IsNaN(bucketQuantile(0.5, nil)) {
		t.Error("empty histogram not NaN")
	}
	if sc.histogram("absent") != nil {
		t.Error("absent histogram")
	}
}

func TestHistogramDelta(t *testing.T) {
	before, _ := parseProm(strings.NewReader(`# TYPE h histogram
h_bucket{le="0.01"} 5
h_sum 1
h_count 6
`))
	after, _ := parseProm(strings.NewReader(`# TYPE h histogram
h_bucket{le="0.005"} 1
h_bucket{le="0.01"} 9
h_bucket{le="+Inf"} 12
h_sum 2
h_count 12
`))
	d := histogramDelta(after, before, "h")
	want := []bucket{{0.005, 1}, {0.01, 4}, {math.Inf(1), 6}}
	if len(d) != len(want) {
		t.Fatalf("delta %+v, want %+v", d, want)
	}
	for i := range want {
		if d[i] != want[i] {
			t.Fatalf("delta %+v, want %+v", d, want)
		}
	}
}
