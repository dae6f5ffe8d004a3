package bridge

import (
	"encoding/binary"
	"math"
)

// interpTaps is the number of input samples each output sample of an
// interpolator weighs.
const interpTaps = 16

// interpolator raises 8 kHz G.711 audio to an integer multiple of its rate
// (16, 24 or 48 kHz, for listening bots) with a polyphase windowed-sinc
// low-pass at 0.9 of the input's Nyquist frequency (3.6 kHz: the telephone
// band is below 3.4 kHz). It is pure Go and allocates only when made:
// libsoxr through zaf/resample allocates on every Write, which the
// per-packet receive path must not. It keeps its history across calls to
// run, so consecutive packets join without a seam.
type interpolator struct {
	l    int       // output samples per input sample
	h    []float64 // l·interpTaps prototype: phase p, tap i at h[p+i·l]
	hist [interpTaps]float64
}

func newInterpolator(l int) *interpolator {
	const fc = 0.9
	m := l * interpTaps
	h := make([]float64, m)
	c := float64(m-1) / 2
	for k := range h {
		x := (float64(k) - c) / float64(l)
		s := fc
		if x != 0 {
			s = math.Sin(math.Pi*fc*x) / (math.Pi * x)
		}
		w := 0.5 - 0.5*math.Cos(2*math.Pi*(float64(k)+0.5)/float64(m)) // Hann
		h[k] = s * w
	}
	for p := range l { // unity gain at DC for every phase
		var sum float64
		for i := range interpTaps {
			sum += h[p+i*l]
		}
		for i := range interpTaps {
			h[p+i*l] /= sum
		}
	}
	return &interpolator{l: l, h: h}
}

// run interpolates in into out as PCM16LE and returns the bytes written
// (2·l·len(in), bounded by out).
func (f *interpolator) run(in []int16, out []byte) int {
	o := 0
	for _, v := range in {
		copy(f.hist[:], f.hist[1:])
		f.hist[interpTaps-1] = float64(v)
		for p := range f.l {
			if o+2 > len(out) {
				return o
			}
			var y float64
			for i := range interpTaps {
				y += f.hist[interpTaps-1-i] * f.h[p+i*f.l]
			}
			y = math.Round(max(-32768, min(32767, y)))
			binary.LittleEndian.PutUint16(out[o:], uint16(int16(y)))
			o += 2
		}
	}
	return o
}
