package main

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// scrape is one parsed /metrics page.
type scrape []promSample

// parseProm parses the Prometheus text exposition format (comments and
// blank lines skipped, an optional timestamp ignored). Lines it cannot read
// are skipped: a report must not die of one odd metric.
func parseProm(r io.Reader) (scrape, error) {
	var out scrape
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, ok := parsePromLine(line)
		if ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func parsePromLine(line string) (promSample, bool) {
	var s promSample
	rest := line
	if i := strings.IndexAny(line, "{ "); i < 0 {
		return s, false
	} else {
		s.Name = line[:i]
		rest = line[i:]
	}
	if rest[0] == '{' {
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			return s, false
		}
		s.Labels = parseLabels(rest[1:end])
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, false
	}
	s.Value = v
	return s, true
}

// parseLabels reads `a="x",b="y \"q\""`.
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		key := strings.TrimSpace(strings.TrimLeft(s[:eq], ","))
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		m[key] = val.String()
		if i >= len(s) {
			break
		}
		s = s[i+1:]
	}
	return m
}

// sum adds every sample called name (all label sets), and reports whether
// any was found.
func (sc scrape) sum(name string) (float64, bool) {
	var v float64
	found := false
	for _, s := range sc {
		if s.Name == name {
			v += s.Value
			found = true
		}
	}
	return v, found
}

// find returns the first metric name with the given suffix that contains
// every one of parts, or "".
func (sc scrape) find(suffix string, parts ...string) string {
	names := map[string]bool{}
	for _, s := range sc {
		names[s.Name] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
next:
	for _, n := range sorted {
		if !strings.HasSuffix(n, suffix) {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(n, p) {
				continue next
			}
		}
		return n
	}
	return ""
}

// bucket is a cumulative histogram bucket: Count observations ≤ LE.
type bucket struct {
	LE    float64
	Count float64
}

// histogram returns the cumulative buckets of histogram base (summed across
// other labels), sorted by bound, the last being +Inf.
func (sc scrape) histogram(base string) []bucket {
	by := map[float64]float64{}
	for _, s := range sc {
		if s.Name != base+"_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil {
			continue
		}
		by[le] += s.Value
	}
	out := make([]bucket, 0, len(by))
	for le, c := range by {
		out = append(out, bucket{le, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

// bucketDelta subtracts an earlier scrape's buckets from a later one's, so
// that only the run's observations remain. Bounds missing from before count
// as zero.
func bucketDelta(after, before []bucket) []bucket {
	prev := map[float64]float64{}
	for _, b := range before {
		prev[b.LE] = b.Count
	}
	out := make([]bucket, len(after))
	for i, b := range after {
		out[i] = bucket{b.LE, b.Count - prev[b.LE]}
	}
	return out
}

// bucketQuantile estimates the q-quantile from cumulative buckets the way
// Prometheus' histogram_quantile does: linear interpolation inside the
// bucket that holds the rank, the lower bound of the first bucket taken as
// 0. If the rank falls in +Inf it returns the largest finite bound. NaN if
// there are no observations.
func bucketQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].Count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
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
