//go:build cgo

package media

import (
	"math"
	"testing"
)

// BenchmarkUpsampleSoxr: the same 20 ms packet as BenchmarkUpsample through
// libsoxr (zaf/resample, ResampleMedium) at each rate. out-samples/op is
// what one packet in gives out on average (soxr holds some back), and the
// allocations are zaf/resample's per Write (C.GoBytes).
func BenchmarkUpsampleSoxr(b *testing.B) {
	for _, rate := range []int{16000, 24000, 48000} {
		b.Run(rateName(rate), func(b *testing.B) {
			w := &countWriter{}
			r, err := newSoxrResampler(w, 8000, rate, ResampleMedium)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			in := make([]byte, 320)
			for i := range 160 {
				v := int16(8000 * math.Sin(float64(i)))
				in[2*i], in[2*i+1] = byte(v), byte(uint16(v)>>8)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := r.Write(in); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(w.n/2)/float64(n), "out-samples/op")
		})
	}
}
