package media

import (
	"errors"
	"math"
	"testing"
)

// TestUpsampler: a 1 kHz tone at 8 kHz comes out of each Upsampler at its
// rate with the same frequency and level, without a seam between packets;
// a tone above the passband (3.9 kHz) is attenuated. Every input sample
// gives exactly Factor output samples.
func TestUpsampler(t *testing.T) {
	for _, l := range []int{2, 3, 6} {
		level := func(hz float64) (rms, freq float64) {
			u, err := NewUpsampler(l)
			if err != nil {
				t.Fatal(err)
			}
			in := make([]int16, 160)
			out := make([]int16, 160*l)
			var all []float64
			for k := range 50 { // 1 s in 20 ms packets
				for i := range in {
					in[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(k*160+i)/8000))
				}
				if n := u.Run(in, out); n != len(out) {
					t.Fatalf("l=%d: %d samples, want %d", l, n, len(out))
				}
				for _, v := range out {
					all = append(all, float64(v))
				}
			}
			all = all[len(all)/10:] // past the filter's start
			var e float64
			cross := 0
			for i, v := range all {
				e += v * v
				if i > 0 && (all[i-1] < 0) != (v < 0) {
					cross++
				}
			}
			secs := float64(len(all)) / float64(8000*l)
			return math.Sqrt(e / float64(len(all))), float64(cross) / 2 / secs
		}
		rms, hz := level(1000)
		if math.Abs(rms-8000/math.Sqrt2) > 0.05*8000/math.Sqrt2 || math.Abs(hz-1000) > 5 {
			t.Errorf("l=%d: 1 kHz came out at %.0f Hz, RMS %.0f (want 1000 Hz, %.0f)", l, hz, rms, 8000/math.Sqrt2)
		}
		if hi, _ := level(3900); hi > 0.5*8000/math.Sqrt2 {
			t.Errorf("l=%d: 3.9 kHz passed at RMS %.0f", l, hi)
		}
	}
	u, err := NewUpsampler(2)
	if err != nil {
		t.Fatal(err)
	}
	if n := u.Run(make([]int16, 10), make([]int16, 7)); n != 6 {
		t.Fatalf("10 samples into room for 7: %d written, want 6 (whole input samples)", n)
	}
	for _, f := range []int{-1, 0, 1, 13} {
		if _, err := NewUpsampler(f); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("NewUpsampler(%d): %v", f, err)
		}
	}
}

// BenchmarkUpsample: one op = one 20 ms G.711 packet (160 samples) raised
// to 16, 24 and 48 kHz by the Upsampler (pure Go, the receive path's);
// BenchmarkUpsampleSoxr (cgo) is libsoxr through zaf/resample for
// comparison.
func BenchmarkUpsample(b *testing.B) {
	for _, rate := range []int{16000, 24000, 48000} {
		b.Run(rateName(rate), func(b *testing.B) {
			u, err := NewUpsampler(rate / 8000)
			if err != nil {
				b.Fatal(err)
			}
			in := make([]int16, 160)
			for i := range in {
				in[i] = int16(8000 * math.Sin(float64(i)))
			}
			out := make([]int16, 160*u.Factor())
			b.ReportAllocs()
			for b.Loop() {
				u.Run(in, out)
			}
		})
	}
}

func rateName(rate int) string {
	return map[int]string{8000: "8k", 16000: "16k", 24000: "24k", 48000: "48k"}[rate]
}
