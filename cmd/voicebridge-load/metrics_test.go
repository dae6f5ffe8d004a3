package main

import (
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
# TYPE voicebridge_pacing_error_seconds histogram
voicebridge_pacing_error_seconds_bucket{le="0.005"} 2
voicebridge_pacing_error_seconds_bucket{le="+Inf"} 10
voicebridge_pacing_error_seconds_sum 0.1
voicebridge_pacing_error_seconds_count 10
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
