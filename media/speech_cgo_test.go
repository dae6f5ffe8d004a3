//go:build cgo

package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/cmplx"
	"os/exec"
	"sync"
	"testing"

	"github.com/hraban/opus"
	"github.com/zaf/resample"
)

var speechOnce struct {
	sync.Once
	pcm24  []byte  // PCM16LE mono at 24 kHz
	pcm48  []int16 // the same at 48 kHz (VHQ), whole frames
	source string
}

// speech returns ~4 s of speech at 24 kHz and 48 kHz: espeak-ng when it is
// installed (the embedded TTS uses it too), else a synthetic voiced signal
// (120 Hz harmonics with vibrato through moving formants).
func speech(tb testing.TB) ([]byte, []int16, string) {
	tb.Helper()
	s := &speechOnce
	s.Do(func() {
		raw, rate := espeak("The quick brown fox jumps over the lazy dog. Voice bridges must not click, drift or lose the last syllable.")
		if raw == nil {
			raw, rate = synthVoice(22050, 4), 22050
			s.source = "synthetic voice"
		} else {
			s.source = "espeak-ng"
		}
		s.pcm24 = convert(tb, raw, rate, 24000)
		p48 := convert(tb, raw, rate, 48000)
		n := len(p48) / 2 / FrameSamples * FrameSamples
		s.pcm48 = make([]int16, n)
		for i := range n {
			s.pcm48[i] = int16(binary.LittleEndian.Uint16(p48[2*i:]))
		}
	})
	return s.pcm24, s.pcm48, s.source
}

func espeak(text string) ([]byte, int) {
	out, err := exec.Command("espeak-ng", "--stdout", "-s", "160", text).Output()
	if err != nil || len(out) < 44 || string(out[:4]) != "RIFF" {
		return nil, 0
	}
	rate := int(binary.LittleEndian.Uint32(out[24:]))
	// Find the data chunk.
	i := 12
	for i+8 <= len(out) {
		id, size := string(out[i:i+4]), int(binary.LittleEndian.Uint32(out[i+4:]))
		if id == "data" {
			end := min(len(out), i+8+size)
			return out[i+8 : end], rate
		}
		i += 8 + size
	}
	return nil, 0
}

func synthVoice(rate int, seconds float64) []byte {
	n := int(float64(rate) * seconds)
	b := make([]byte, 2*n)
	var ph float64
	for i := range n {
		t := float64(i) / float64(rate)
		f0 := 120 + 15*math.Sin(2*math.Pi*5*t)
		ph += 2 * math.Pi * f0 / float64(rate)
		f1 := 500 + 300*math.Sin(2*math.Pi*0.7*t)
		f2 := 1500 + 700*math.Sin(2*math.Pi*0.45*t)
		var v float64
		for h := 1; float64(h)*f0 < float64(rate)/2; h++ {
			fh := float64(h) * f0
			g := math.Exp(-sq((fh-f1)/150)) + 0.5*math.Exp(-sq((fh-f2)/200)) + 0.05
			v += g * math.Sin(float64(h)*ph) / float64(h)
		}
		env := 0.5 + 0.5*math.Sin(2*math.Pi*3*t)
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(6000*env*v)))
	}
	return b
}

func sq(x float64) float64 { return x * x }

func convert(tb testing.TB, pcm []byte, from, to int) []byte {
	tb.Helper()
	if from == to {
		return pcm
	}
	var out bytes.Buffer
	r, err := resample.New(&out, float64(from), float64(to), 1, resample.I16, resample.VeryHighQ)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := r.Write(pcm[:len(pcm)&^1]); err != nil {
		tb.Fatal(err)
	}
	if err := r.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// codecQuality encodes pcm (48 kHz, whole frames) with cfg, decodes it and
// compares with the input, aligned by the encoder's lookahead: waveform SNR
// and the log-spectral distance (RMS over 20 ms frames of the dB difference
// per 47 Hz bin between 100 Hz and 11 kHz, frames with speech only).
func codecQuality(tb testing.TB, cfg EncoderConfig, pcm []int16) (snr, lsd, kbps float64) {
	tb.Helper()
	enc, err := NewEncoder(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, 1500)
	frame := make([]int16, FrameSamples)
	decoded := make([]int16, 0, len(pcm)+2*FrameSamples)
	bytesOut := 0
	for i := 0; i+FrameSamples <= len(pcm)+2*FrameSamples; i += FrameSamples {
		clear(frame)
		if i < len(pcm) {
			copy(frame, pcm[i:min(len(pcm), i+FrameSamples)])
		}
		n, err := enc.Encode(frame, out)
		if err != nil {
			tb.Fatal(err)
		}
		bytesOut += n
		buf := make([]int16, FrameSamples)
		if _, err := dec.Decode(out[:n], buf); err != nil {
			tb.Fatal(err)
		}
		decoded = append(decoded, buf...)
	}
	look := enc.Lookahead()
	x := toFloat(pcm)
	y := toFloat(decoded[look : look+len(pcm)])
	var se, sx float64
	for i := range x {
		se += sq(x[i] - y[i])
		sx += sq(x[i])
	}
	snr = 10 * math.Log10(sx/se)
	lsd = logSpectralDistance(x, y)
	kbps = float64(bytesOut*8) / (float64(len(pcm)+2*FrameSamples) / SampleRate) / 1000
	return snr, lsd, kbps
}

func logSpectralDistance(x, y []float64) float64 {
	const n = 1024
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/n)
	}
	lo, hi := 100*n/SampleRate+1, 11000*n/SampleRate
	var sum float64
	count := 0
	fx, fy := make([]complex128, n), make([]complex128, n)
	for start := 0; start+n <= len(x); start += FrameSamples {
		if rms(x[start:start+n]) < 100 { // skip pauses
			continue
		}
		for i := range n {
			fx[i] = complex(x[start+i]*win[i], 0)
			fy[i] = complex(y[start+i]*win[i], 0)
		}
		fft(fx)
		fft(fy)
		var d float64
		for k := lo; k < hi; k++ {
			px := sq(cmplx.Abs(fx[k])) + 1e3
			py := sq(cmplx.Abs(fy[k])) + 1e3
			d += sq(10 * math.Log10(px/py))
		}
		sum += math.Sqrt(d / float64(hi-lo))
		count++
	}
	return sum / float64(max(1, count))
}

// fft is an in-place radix-2 FFT; len(a) is a power of two.
func fft(a []complex128) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := range size / 2 {
				u, v := a[start+k], a[start+k+size/2]*wk
				a[start+k], a[start+k+size/2] = u+v, u-v
				wk *= w
			}
		}
	}
}
