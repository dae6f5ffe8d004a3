package ttsserver

import (
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
)

// TestTonesVoice is the voice_id of the embedded server's deterministic test
// voice: every word of the text is one pure tone of ToneWordDuration (at
// speed 1), back to back and phase-continuous, so an utterance is one
// unbroken signal whose length and content a receiver can check exactly.
// Any dialect and sample rate; no espeak-ng involved.
const TestTonesVoice = "test-tones"

// ToneWordDuration is how long one word of TestTonesVoice lasts at speed 1.
const ToneWordDuration = 200 * time.Millisecond

// ToneAmplitude is the peak of TestTonesVoice's tones (about −10 dBFS).
const ToneAmplitude = 10000

// toneFade is the fade in and out at the edges of an utterance (no click).
const toneFade = 5 * time.Millisecond

// ToneFrequency returns the frequency of word in TestTonesVoice: a word
// that is a whole number from 100 to 3500 ("440") is that many hertz, so
// a test chooses its tones; any other word gets one from a hash of it,
// 300 to 3300 Hz in 50 Hz steps. Tones above 45% of the sample rate are
// folded down an octave until they fit.
func ToneFrequency(word string) float64 {
	if n, err := strconv.Atoi(word); err == nil && n >= 100 && n <= 3500 {
		return float64(n)
	}
	h := fnv.New32a()
	h.Write([]byte(word))
	return float64(300 + 50*(h.Sum32()%61))
}

// ToneSamples is the number of samples one word of TestTonesVoice lasts at
// rate and speed (speed ≤ 0 is 1).
func ToneSamples(rate int, speed float64) int {
	if speed <= 0 {
		speed = 1
	}
	return int(math.Round(float64(rate) * ToneWordDuration.Seconds() / speed))
}

// toneVoice speaks text with TestTonesVoice at rate.
func toneVoice(text string, rate int, speed float64) []int16 {
	words := strings.Fields(text)
	per := ToneSamples(rate, speed)
	out := make([]int16, len(words)*per)
	fade := int(float64(rate) * toneFade.Seconds())
	phase := 0.0
	for w, word := range words {
		f := ToneFrequency(word)
		for f > 0.45*float64(rate) {
			f /= 2
		}
		step := 2 * math.Pi * f / float64(rate)
		for i := range per {
			n := w*per + i
			g := 1.0
			if n < fade {
				g = float64(n) / float64(fade)
			} else if m := len(out) - 1 - n; m < fade {
				g = float64(m) / float64(fade)
			}
			out[n] = int16(math.Round(ToneAmplitude * g * math.Sin(phase)))
			phase += step
		}
		phase = math.Mod(phase, 2*math.Pi)
	}
	return out
}
