package ttsserver

import (
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// fallbackVoice synthesizes a deterministic voice-like signal for text at
// rate, used when espeak-ng is not installed: a glottal pulse train (pitch
// with a gentle intonation contour) through two formant resonators whose
// vowel changes per syllable, shaped by a syllable envelope, with pauses at
// spaces and punctuation. It is not speech, but it has speech's rhythm,
// spectrum and loudness, so the audio path is exercised realistically. The
// same text, voice and rate always give the same samples.
func fallbackVoice(text, voice string, rate int, speed float64) []int16 {
	if speed <= 0 {
		speed = 1
	}
	f0 := 115.0
	if strings.Contains(strings.ToLower(voice), "female") {
		f0 = 205
	}
	vowels := [][2]float64{{730, 1090}, {270, 2290}, {300, 870}, {530, 1840}, {570, 840}}
	fs := float64(rate)
	syl := int(0.18 * fs / speed)   // one syllable per ~3 letters
	pause := int(0.09 * fs / speed) // a space or punctuation
	var out []int16
	var y1, y2, z1, z2, phase float64
	syllable := func(seed string) {
		h := fnv.New32a()
		h.Write([]byte(seed))
		v := vowels[h.Sum32()%uint32(len(vowels))]
		a1, b1, g1 := resonator(v[0], 90, fs)
		a2, b2, g2 := resonator(v[1], 120, fs)
		start := len(out)
		for i := 0; i < syl; i++ {
			t := float64(start+i) / fs
			pitch := f0 * (1 + 0.08*math.Sin(2*math.Pi*0.6*t))
			phase += pitch / fs
			x := 0.0
			if phase >= 1 {
				phase -= 1
				x = 1 // a glottal pulse
			}
			y := g1*x + a1*y1 - b1*y2
			y2, y1 = y1, y
			z := g2*x + a2*z1 - b2*z2
			z2, z1 = z1, z
			env := math.Sin(math.Pi * float64(i) / float64(syl))
			out = append(out, clamp16((y+0.5*z)*env*20000))
		}
	}
	for _, word := range strings.FieldsFunc(text, func(r rune) bool { return unicode.IsSpace(r) }) {
		letters := []rune(strings.TrimFunc(word, unicode.IsPunct))
		for i := 0; i < len(letters); i += 3 {
			syllable(string(letters[i:min(i+3, len(letters))]))
		}
		n := pause
		if strings.IndexFunc(word, unicode.IsPunct) >= 0 {
			n *= 3
		}
		out = append(out, make([]int16, n)...)
	}
	return out
}

// resonator returns the coefficients of a two-pole resonator at freq Hz
// with bandwidth bw Hz: y = g·x + a·y1 − b·y2.
func resonator(freq, bw, fs float64) (a, b, g float64) {
	r := math.Exp(-math.Pi * bw / fs)
	a = 2 * r * math.Cos(2*math.Pi*freq/fs)
	b = r * r
	g = 1 - r
	return a, b, g
}
