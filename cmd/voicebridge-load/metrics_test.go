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
voicebridge_late_frames_total 3
go_goroutines 42
process_resident_memory_bytes 1.2e+07
voicebridge_first_audio_seconds_bucket{le="0.005"} 2
voicebridge_first_audio_seconds_bucket{le="0.01"} 6
voicebridge_first_audio_seconds_bucket{le="0.025"} 10
voicebridge_first_audio_seconds_bucket{le="+Inf"} 10
voicebridge_first_audio_seconds_sum 0.1
voicebridge_first_audio_seconds_count 10
weird{a="x\"y,z",b="2"} 7 1700000000000
broken{le="1" 5
nonumber abc
`

func TestParseProm(t *testing.T) {
	sc, err := parseProm(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := sc.sum("voicebridge_frames_sent_total"); !ok || v != 500 {
		t.Errorf("frames sum %v %v", v, ok)
	}
	if v, _ := sc.sum("process_resident_memory_bytes"); v != 12e6 {
		t.Errorf("rss %v", v)
	}
	if _, ok := sc.sum("absent"); ok {
		t.Error("absent metric found")
	}
	var weird promSample
	for _, s := range sc {
		if s.Name == "weird" {
			weird = s
		}
		if s.Name == "broken" || s.Name == "nonumber" {
			t.Errorf("malformed line parsed: %+v", s)
		}
	}
	if weird.Value != 7 || weird.Labels["a"] != `x"y,z` || weird.Labels["b"] != "2" {
		t.Errorf("weird: %+v", weird)
	}
	if n := sc.find("_total", "late"); n != "voicebridge_late_frames_total" {
		t.Errorf("find late: %q", n)
	}
	if n := sc.find("_total", "frames", "sent"); n != "voicebridge_frames_sent_total" {
		t.Errorf("find frames: %q", n)
	}
	if n := sc.find("_bucket", "first_audio"); n != "voicebridge_first_audio_seconds_bucket" {
		t.Errorf("find hist: %q", n)
	}
	if n := sc.find("_bucket", "nothing"); n != "" {
		t.Errorf("find nothing: %q", n)
	}
}

func TestBucketQuantile(t *testing.T) {
	sc, _ := parseProm(strings.NewReader(exposition))
	bs := sc.histogram("voicebridge_first_audio_seconds")
	if len(bs) != 4 || !math.IsInf(bs[3].LE, 1) {
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
}

func TestBucketDelta(t *testing.T) {
	before := []bucket{{0.01, 5}, {math.Inf(1), 6}}
	after := []bucket{{0.005, 1}, {0.01, 9}, {math.Inf(1), 12}}
	d := bucketDelta(after, before)
	want := []bucket{{0.005, 1}, {0.01, 4}, {math.Inf(1), 6}}
	for i := range want {
		if d[i] != want[i] {
			t.Fatalf("delta %+v, want %+v", d, want)
		}
	}
}
