//go:build cgo

package media

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hraban/opus"
	"github.com/pion/rtp"
)

// decodeAll decodes every packet in order (speech and silence) into one
// 48 kHz signal, and returns the index of the first marker packet.
func decodeAll(t testing.TB, pkts []rtp.Packet) ([]float64, int) {
	t.Helper()
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, 0, len(pkts)*FrameSamples)
	buf := make([]int16, 5760)
	first := -1
	for i, p := range pkts {
		if p.Marker && first < 0 {
			first = i
		}
		n, err := dec.Decode(p.Payload, buf)
		if err != nil {
			t.Fatalf("decode packet %d: %v", i, err)
		}
		if n != FrameSamples {
			t.Fatalf("packet %d decodes to %d samples", i, n)
		}
		out = append(out, buf[:n]...)
	}
	return toFloat(out), first
}

// chunker cuts data into chunks of random sizes in [lo, hi] bytes.
func chunker(data []byte, lo, hi int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	var cs [][]byte
	for len(data) > 0 {
		k := min(len(data), lo+rng.IntN(hi-lo+1))
		cs = append(cs, data[:k])
		data = data[k:]
	}
	return cs
}

// playGeneration writes chunks (each with its rate) as one generation,
// ends it and ticks the pacer until its EventDone.
func playGeneration(t testing.TB, h *harness, chunks [][]byte, rates []int) {
	t.Helper()
	ctx := context.Background()
	for i, c := range chunks {
		if err := h.s.Write(ctx, c, rates[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.s.EndGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	h.stepUntil(1000, func() bool { return h.doneCount() == 1 })
	h.steps(3)
	h.stop()
}

const (
	testFreq = 1000.0
	testAmp  = 12000.0
)

// TestToneRoundTrip: a 1 kHz tone at every input rate, cut in random chunk
// sizes (odd byte counts included), through resampler and Opus, decoded
// with libopus. Checks, on the 48 kHz PCM handed to the encoder: exact
// length, continuity (no click at any chunk boundary: the residual after
// fitting the tone is at the resampler's noise floor), the tail fully
// there; and on the decoded Opus: frequency, level, no click, tail played.
func TestToneRoundTrip(t *testing.T) {
	patterns := []struct {
		name   string
		lo, hi int
	}{{"tiny", 1, 7}, {"random", 1, 3001}, {"big", 4000, 20001}}
	for _, rate := range []int{8000, 16000, 22050, 24000} {
		for pi, pat := range patterns {
			t.Run(pat.name+"/"+itoa(rate), func(t *testing.T) {
				const ms = 500
				in := rate * ms / 1000
				data := tone(rate, testFreq, testAmp, 0, 0, in)
				chunks := chunker(data, pat.lo, pat.hi, uint64(rate+pi))
				rates := make([]int, len(chunks))
				for i := range rates {
					rates[i] = rate
				}
				h := newHarness(t, harnessOpt{realCodec: true, keep: true})
				playGeneration(t, h, chunks, rates)
				checkTone(t, h, SampleRate*ms/1000)
			})
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// checkTone checks a single tone of n48 samples (at 48 kHz) as played.
func checkTone(t *testing.T, h *harness, n48 int) {
	t.Helper()
	look := h.s.lookahead
	pcm := toFloat(h.capture.pcm())
	wantLen := (n48 + look + FrameSamples - 1) / FrameSamples * FrameSamples
	if len(pcm) != wantLen {
		t.Fatalf("%d samples encoded, want %d (tone %d + lookahead %d, padded)", len(pcm), wantLen, n48, look)
	}
	// Resampled PCM, away from the filter's start/end transients (5 ms).
	steady := pcm[240 : n48-240]
	fit := fitTone(steady, testFreq, SampleRate)
	if d := db(fit.amp / testAmp); math.Abs(d) > 0.1 {
		t.Errorf("resampled level %.2f dB off", d)
	}
	if r := fit.maxResid / testAmp; r > 0.002 {
		t.Errorf("resampled residual peak %.4f of amplitude at %d: a discontinuity", r, fit.maxAt+240)
	}
	step, at := maxStep(steady)
	if lim := testAmp * 2 * math.Pi * testFreq / SampleRate * 1.01; step > lim {
		t.Errorf("resampled step %.0f at %d exceeds a tone's %.0f", step, at+240, lim)
	}
	// Tail: the last 5 ms of the tone are there at full level, then zeros.
	if tail := fitTone(pcm[n48-240:n48], testFreq, SampleRate); db(tail.amp/testAmp) < -1 {
		t.Errorf("resampled tail level %.2f dB: end of the generation lost", db(tail.amp/testAmp))
	}
	if r := rms(pcm[n48+48:]); r > testAmp*0.01 {
		t.Errorf("padding not silent: rms %.1f", r)
	}

	// Decoded Opus.
	dec, first := decodeAll(t, h.rec.packets())
	if first < 0 {
		t.Fatal("no marker packet")
	}
	base := first*FrameSamples + look // decoded index of resampled sample 0
	body := dec[base+960 : base+n48-960]
	f := zeroCrossFreq(body, SampleRate)
	if math.Abs(f-testFreq) > testFreq*0.002 {
		t.Errorf("decoded frequency %.1f Hz, want %.0f", f, testFreq)
	}
	dfit := fitTone(body, testFreq, SampleRate)
	if d := db(dfit.amp / testAmp); math.Abs(d) > 1 {
		t.Errorf("decoded level %.2f dB off", d)
	}
	snr := db(dfit.amp / math.Sqrt2 / dfit.rms)
	if snr < 20 {
		t.Errorf("decoded SNR %.1f dB; stats %+v", snr, h.s.Stats())
		for i, p := range h.rec.packets() {
			t.Logf("%d m=%v len=%d rms=%.0f", i, p.Marker, len(p.Payload), rms(dec[i*960:i*960+960]))
		}
	}
	if r := dfit.maxResid / testAmp; r > 0.15 {
		t.Errorf("decoded residual peak %.3f of amplitude at %d: click", r, dfit.maxAt)
	}
	if tail := fitTone(dec[base+n48-480:base+n48-48], testFreq, SampleRate); db(tail.amp/testAmp) < -1.5 {
		t.Errorf("decoded tail level %.2f dB: end of the generation not played", db(tail.amp/testAmp))
	}
	if testing.Verbose() {
		t.Logf("resampled: level %+.3f dB, residual peak %.5f·A; decoded: %.2f Hz, level %+.2f dB, SNR %.1f dB, residual peak %.3f·A",
			db(fit.amp/testAmp), fit.maxResid/testAmp, f, db(dfit.amp/testAmp), snr, dfit.maxResid/testAmp)
	}
}

// TestRateChangeMidStream: one continuous 1 kHz tone whose first 200 ms
// arrive at one rate and the next 200 ms at another, in one generation. The
// old segment's ring-down and the new one's pre-ringing are overlap-added,
// so the resampled tone stays continuous. What remains at the boundary is
// the change of bandwidth itself (a 4 kHz-wide signal becoming 11 kHz-wide
// or back): measured 0.5 % of the amplitude between 22050 and 24000 Hz,
// 2-3 % for 16000 Hz, 7-8.5 % when 8000 Hz is involved (a plain
// flush-and-restart measured 2.6-3.4 % at similar bandwidths), against ~3×
// the amplitude for the per-chunk resampler restarts of
// TestClickDetectorSeesRestart.
func TestRateChangeMidStream(t *testing.T) {
	pairs := []struct {
		from, to int
		limit    float64
	}{
		{24000, 22050, 0.01}, {22050, 24000, 0.01},
		{24000, 16000, 0.04}, {16000, 22050, 0.04},
		{22050, 8000, 0.1}, {8000, 24000, 0.1}, {16000, 8000, 0.1},
	}
	for _, pr := range pairs {
		var chunks [][]byte
		var crates []int
		var tsec float64
		for i, r := range []int{pr.from, pr.to} {
			n := r * 200 / 1000
			data := tone(r, testFreq, testAmp, 2*math.Pi*testFreq*tsec, 0, n)
			for _, c := range chunker(data, 100, 1500, uint64(i)) {
				chunks = append(chunks, c)
				crates = append(crates, r)
			}
			tsec += float64(n) / float64(r)
		}
		h := newHarness(t, harnessOpt{realCodec: true, keep: true})
		playGeneration(t, h, chunks, crates)
		pcm := toFloat(h.capture.pcm())
		if n := len(pcm); n < 19200 {
			t.Fatalf("%d->%d: %d samples", pr.from, pr.to, n)
		}
		fit := fitTone(pcm[240:19200-240], testFreq, SampleRate)
		r := fit.maxResid / testAmp
		t.Logf("%5d -> %5d Hz: residual peak %.4f·A at %+d samples from the change", pr.from, pr.to, r, fit.maxAt+240-9600)
		if r > pr.limit {
			t.Errorf("%d -> %d Hz: residual peak %.4f·A > %.2f: click at the rate change", pr.from, pr.to, r, pr.limit)
		}
		if d := db(fit.amp / testAmp); math.Abs(d) > 0.1 {
			t.Errorf("%d -> %d Hz: level %.2f dB off", pr.from, pr.to, d)
		}
	}
}

// TestClickDetectorSeesRestart is the negative control of the checks
// above: resampling each chunk with a fresh resampler (the bug other bridges
// have) must fail them.
func TestClickDetectorSeesRestart(t *testing.T) {
	const rate = 24000
	data := tone(rate, testFreq, testAmp, 0, 0, rate/2)
	var out bytesWriter
	for _, c := range chunker(data, 900, 3001, 5) {
		c = c[:len(c)&^1]
		r, err := NewResampler(&out, rate, ResampleMedium)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Write(c); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
	}
	pcm := toFloat(out.samples())
	fit := fitTone(pcm[240:len(pcm)-240], testFreq, SampleRate)
	t.Logf("restart per chunk: residual peak %.3f·A", fit.maxResid/testAmp)
	if fit.maxResid/testAmp < 0.1 {
		t.Fatalf("restarting the resampler per chunk went unnoticed (residual %.4f·A)", fit.maxResid/testAmp)
	}
}

type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesWriter) samples() []int16 {
	s := make([]int16, len(w.b)/2)
	for i := range s {
		s[i] = int16(uint16(w.b[2*i]) | uint16(w.b[2*i+1])<<8)
	}
	return s
}

// TestClearDropsResamplerTail: after Clear, nothing of the interrupted
// generation reaches the encoder, not even the ~40 ms libsoxr was holding
// back; the next generation starts clean.
func TestClearDropsResamplerTail(t *testing.T) {
	h := newHarness(t, harnessOpt{realCodec: true, keep: true})
	ctx := context.Background()
	if err := h.s.Write(ctx, tone(24000, testFreq, testAmp, 0, 0, 24000*3/10), 24000); err != nil {
		t.Fatal(err)
	}
	h.steps(5) // two frames of pre-roll lead, then 3 frames played
	if st := h.s.Stats(); st.SpeechFrames != 3 {
		t.Fatalf("stats %+v, want 3 speech frames before the Clear", st)
	}
	h.s.Clear()
	const fB = 500.0
	nB := 24000 / 5
	playGeneration(t, h, [][]byte{tone(24000, fB, testAmp, 0, 0, nB)}, []int{24000})
	pcm := toFloat(h.capture.pcm())
	before := 3 * FrameSamples
	after := pcm[before:]
	n48 := nB * 2
	if want := (n48 + h.s.lookahead + FrameSamples - 1) / FrameSamples * FrameSamples; len(after) != want {
		t.Fatalf("%d samples after Clear, want %d (the new generation only)", len(after), want)
	}
	if a := fitTone(after, testFreq, SampleRate).amp; a > testAmp*0.001 {
		t.Errorf("interrupted 1 kHz tone leaks after Clear: amplitude %.1f", a)
	}
	if d := db(fitTone(after[240:n48-240], fB, SampleRate).amp / testAmp); math.Abs(d) > 0.1 {
		t.Errorf("new generation level %.2f dB off", d)
	}
}

// TestResamplerCloseWritesNothing: Close drops the held-back tail (the
// Resampler contract); zaf/resample's own Close and Reset flush it into the
// destination.
func TestResamplerCloseWritesNothing(t *testing.T) {
	var out bytesWriter
	r, err := NewResampler(&out, 24000, ResampleDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(tone(24000, testFreq, testAmp, 0, 0, 24000/10)); err != nil {
		t.Fatal(err)
	}
	n := len(out.b)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if len(out.b) != n {
		t.Fatalf("Close wrote %d bytes to the destination", len(out.b)-n)
	}
}
