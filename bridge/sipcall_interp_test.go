package bridge

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestInterpolator: a 1 kHz tone at 8 kHz comes out of each interpolator
// at its rate with the same frequency and level, without a seam between
// packets; a tone above the passband (3.9 kHz) is attenuated.
func TestInterpolator(t *testing.T) {
	for _, l := range []int{2, 3, 6} {
		level := func(hz float64) (rms, freq float64) {
			f := newInterpolator(l)
			in := make([]int16, 160)
			out := make([]byte, 2*160*l)
			var all []float64
			for k := range 50 { // 1 s in 20 ms packets
				for i := range in {
					in[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(k*160+i)/8000))
				}
				if n := f.run(in, out); n != len(out) {
					t.Fatalf("l=%d: %d bytes, want %d", l, n, len(out))
				}
				for i := 0; i < len(out); i += 2 {
					all = append(all, float64(int16(binary.LittleEndian.Uint16(out[i:]))))
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
}
