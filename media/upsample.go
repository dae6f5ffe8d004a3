package media

import (
	"fmt"
	"math"
)

// upsampleTaps is the number of input samples each output sample of an
// Upsampler weighs.
const upsampleTaps = 16

// Upsampler raises audio by an integer factor (8 kHz G.711 to the 16, 24
// or 48 kHz a bot listens at) with a polyphase windowed-sinc low-pass at
// 0.9 of the input's Nyquist frequency (3.6 kHz at 8 kHz: the telephone
// band ends at 3.4 kHz). Every input sample gives exactly Factor output
// samples at once, and the history carries across calls, so consecutive
// packets join without a seam; the filter's delay is upsampleTaps/2 input
// samples (1 ms at 8 kHz).
//
// It is the receive path's rate step for G.711, in place of the libsoxr
// Resampler the send path uses, for two reasons measured in
// BenchmarkUpsample: zaf/resample copies input and output through C memory
// and a new Go slice (C.GoBytes) on every Write, which the per-packet path
// must not do, and libsoxr holds output back, so a packet in would not give
// its own duration out (the bot's 20 ms messages must follow the caller's
// packets one for one). Pure Go; used from one goroutine; Run allocates
// nothing.
type Upsampler struct {
	l int // output samples per input sample
	// h holds the l phases of the prototype filter, each as upsampleTaps
	// weights in history order (oldest input first).
	h [][upsampleTaps]float32
	// hist is the last upsampleTaps inputs, twice: input k is at pos and
	// pos+upsampleTaps, so hist[pos+1:][:upsampleTaps] is always the
	// window, oldest first, without shifting.
	hist [2 * upsampleTaps]float32
	pos  int
}

// NewUpsampler returns an Upsampler by factor (2 to 12).
func NewUpsampler(factor int) (*Upsampler, error) {
	if factor < 2 || factor > 12 {
		return nil, fmt.Errorf("%w: upsampling factor %d (want 2..12)", ErrInvalidConfig, factor)
	}
	const fc = 0.9
	l := factor
	m := l * upsampleTaps
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
		for i := range upsampleTaps {
			sum += h[p+i*l]
		}
		for i := range upsampleTaps {
			h[p+i*l] /= sum
		}
	}
	u := &Upsampler{l: l, h: make([][upsampleTaps]float32, l)}
	for p := range l {
		for i := range upsampleTaps {
			u.h[p][upsampleTaps-1-i] = float32(h[p+i*l])
		}
	}
	return u, nil
}

// Factor is the number of output samples per input sample.
func (u *Upsampler) Factor() int { return u.l }

// Run upsamples in into out and returns the samples written:
// Factor·len(in), or fewer (whole input samples only) when out is shorter.
func (u *Upsampler) Run(in, out []int16) int {
	o := 0
	for _, v := range in {
		if o+u.l > len(out) {
			break
		}
		u.pos = (u.pos + 1) % upsampleTaps
		u.hist[u.pos], u.hist[u.pos+upsampleTaps] = float32(v), float32(v)
		w := (*[upsampleTaps]float32)(u.hist[u.pos+1:])
		for p := range u.h {
			h := &u.h[p]
			var y float32
			for i := range upsampleTaps {
				y += w[i] * h[i]
			}
			out[o] = int16(max(-32768, min(32767, y+copysign05(y))))
			o++
		}
	}
	return o
}

// copysign05 is ±0.5 with y's sign: adding it and truncating rounds to
// nearest.
func copysign05(y float32) float32 {
	if y < 0 {
		return -0.5
	}
	return 0.5
}

// Reset forgets the history (the next input starts from silence).
func (u *Upsampler) Reset() { u.hist, u.pos = [2 * upsampleTaps]float32{}, 0 }
