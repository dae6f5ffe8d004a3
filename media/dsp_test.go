package media

import (
	"math"
)

// tone returns n samples of A·sin(2π f t + phase) at rate as PCM16LE,
// rounding to int16.
func tone(rate int, f, amp, phase float64, from, n int) []byte {
	b := make([]byte, 0, 2*n)
	for i := from; i < from+n; i++ {
		v := int16(math.Round(amp * math.Sin(2*math.Pi*f*float64(i)/float64(rate)+phase)))
		b = append(b, byte(v), byte(uint16(v)>>8))
	}
	return b
}

func toFloat(x []int16) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// toneFit is the least-squares fit of a·cos(wt) + b·sin(wt) + c to x with w
// known, and the residual.
type toneFit struct {
	amp       float64 // sqrt(a²+b²)
	rms       float64 // residual RMS
	maxResid  float64 // largest |residual|
	maxAt     int     // where
	residuals []float64
}

func fitTone(x []float64, f float64, fs float64) toneFit {
	w := 2 * math.Pi * f / fs
	// Normal equations for [cos, sin, 1].
	var m [3][3]float64
	var r [3]float64
	for i, v := range x {
		b := [3]float64{math.Cos(w * float64(i)), math.Sin(w * float64(i)), 1}
		for j := range 3 {
			r[j] += b[j] * v
			for k := range 3 {
				m[j][k] += b[j] * b[k]
			}
		}
	}
	c := solve3(m, r)
	fit := toneFit{amp: math.Hypot(c[0], c[1]), residuals: make([]float64, len(x))}
	var ss float64
	for i, v := range x {
		e := v - (c[0]*math.Cos(w*float64(i)) + c[1]*math.Sin(w*float64(i)) + c[2])
		fit.residuals[i] = e
		ss += e * e
		if math.Abs(e) > fit.maxResid {
			fit.maxResid, fit.maxAt = math.Abs(e), i
		}
	}
	fit.rms = math.Sqrt(ss / float64(len(x)))
	return fit
}

func solve3(m [3][3]float64, r [3]float64) [3]float64 {
	// Gaussian elimination with partial pivoting.
	for i := range 3 {
		p := i
		for j := i + 1; j < 3; j++ {
			if math.Abs(m[j][i]) > math.Abs(m[p][i]) {
				p = j
			}
		}
		m[i], m[p] = m[p], m[i]
		r[i], r[p] = r[p], r[i]
		for j := i + 1; j < 3; j++ {
			k := m[j][i] / m[i][i]
			for l := i; l < 3; l++ {
				m[j][l] -= k * m[i][l]
			}
			r[j] -= k * r[i]
		}
	}
	var c [3]float64
	for i := 2; i >= 0; i-- {
		s := r[i]
		for j := i + 1; j < 3; j++ {
			s -= m[i][j] * c[j]
		}
		c[i] = s / m[i][i]
	}
	return c
}

// zeroCrossFreq estimates a tone's frequency from its rising zero crossings
// (linearly interpolated).
func zeroCrossFreq(x []float64, fs float64) float64 {
	var first, last float64
	n := 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			t := float64(i-1) + x[i-1]/(x[i-1]-x[i])
			if n == 0 {
				first = t
			}
			last = t
			n++
		}
	}
	if n < 2 {
		return 0
	}
	return float64(n-1) * fs / (last - first)
}

func rms(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(max(1, len(x))))
}

func db(x float64) float64 { return 20 * math.Log10(x) }

// maxStep is the largest |x[i]-x[i-1]|.
func maxStep(x []float64) (float64, int) {
	var m float64
	at := 0
	for i := 1; i < len(x); i++ {
		if d := math.Abs(x[i] - x[i-1]); d > m {
			m, at = d, i
		}
	}
	return m, at
}
