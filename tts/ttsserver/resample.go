package ttsserver

import (
	"math"
	"sync"
)

// Server-side rate conversion for the embedded TTS, in pure Go (tts never
// depends on package media). It is a windowed-sinc interpolator: a
// Blackman-windowed sinc low-pass at 0.95 × the lower Nyquist frequency,
// 16 zero crossings each side, looked up in a table of 256 points per zero
// crossing with linear interpolation between points. Plenty for a dev/test
// server; speech passes, aliasing is ~-60 dB. Results are cached by the
// synthesizer, so the cost is paid once per (text, voice, rate).

const (
	sincZeros = 16  // zero crossings each side
	sincRes   = 256 // table points per zero crossing
)

var (
	sincOnce  sync.Once
	sincTable []float64 // windowed sinc at x = i/sincRes, x in [0, sincZeros]
)

func sincKernel() []float64 {
	sincOnce.Do(func() {
		n := sincZeros*sincRes + 2
		sincTable = make([]float64, n)
		for i := range sincTable {
			x := float64(i) / sincRes
			s := 1.0
			if x != 0 {
				s = math.Sin(math.Pi*x) / (math.Pi * x)
			}
			u := x / sincZeros // 0..1
			w := 0.0
			if u <= 1 {
				w = 0.42 + 0.5*math.Cos(math.Pi*u) + 0.08*math.Cos(2*math.Pi*u)
			}
			sincTable[i] = s * w
		}
	})
	return sincTable
}

// resamplePCM converts PCM16 samples from inRate to outRate.
func resamplePCM(in []int16, inRate, outRate int) []int16 {
	if inRate == outRate || len(in) == 0 {
		return append([]int16(nil), in...)
	}
	tab := sincKernel()
	step := float64(inRate) / float64(outRate) // input samples per output sample
	fc := 0.95 * math.Min(1, 1/step)           // cutoff, in units of the input Nyquist
	half := float64(sincZeros) / fc            // kernel half width in input samples
	nOut := int(int64(len(in)) * int64(outRate) / int64(inRate))
	out := make([]int16, nOut)
	for n := range out {
		t := float64(n) * step
		lo := int(math.Ceil(t - half))
		hi := int(math.Floor(t + half))
		lo = max(lo, 0)
		hi = min(hi, len(in)-1)
		acc := 0.0
		for k := lo; k <= hi; k++ {
			x := math.Abs(t-float64(k)) * fc * sincRes
			i := int(x)
			if i >= len(tab)-1 {
				continue
			}
			f := x - float64(i)
			acc += float64(in[k]) * (tab[i] + f*(tab[i+1]-tab[i]))
		}
		out[n] = clamp16(acc * fc)
	}
	return out
}

func clamp16(v float64) int16 {
	v = math.Round(v)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}
