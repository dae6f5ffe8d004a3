package media

import (
	"math"
	"testing"
)

// toneShare is the share of x's energy at f (rate fs): near 1 for a pure
// tone at f.
func toneShare(x []int16, f, fs float64) float64 {
	xf := make([]float64, len(x))
	var e float64
	for i, v := range x {
		xf[i] = float64(v)
		e += xf[i] * xf[i]
	}
	if e == 0 {
		return 0
	}
	return 2 * goertzel(xf, f, fs) / (float64(len(x)) * e)
}

func rms16(x []int16) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(max(len(x), 1)))
}

// g711Tone is packet k (20 ms) of a tone at f Hz in c.
func g711Tone(c Codec, f float64, k int) []byte {
	pcm := make([]int16, G711FrameSamples)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(k*G711FrameSamples+i)/G711SampleRate))
	}
	b := make([]byte, G711FrameSamples)
	EncodeG711(b, pcm, c)
	return b
}

// TestG711Concealment: a G.711 tone with one 20 ms packet lost, then five
// in a row, decoded at 8 and 16 kHz. The output keeps time (every packet
// and every concealment gives its own duration); a single lost packet is
// filled with the tone at nearly its level; a long loss fades to silence
// after 60 ms; there is no click where concealment starts or ends (no step
// between samples larger than the tone's own).
func TestG711Concealment(t *testing.T) {
	const hz = 440
	for _, c := range []Codec{CodecPCMU, CodecPCMA} {
		for _, rate := range []int{8000, 16000} {
			t.Run(c.String()+"/"+rateName(rate), func(t *testing.T) {
				d, err := NewG711Decoder(c, rate)
				if err != nil {
					t.Fatal(err)
				}
				f := rate / G711SampleRate
				frame := G711FrameSamples * f
				lost := map[int]bool{10: true, 20: true, 21: true, 22: true, 23: true, 24: true}
				var out []int16
				pcm := make([]int16, 6*frame)
				for k := range 40 {
					if lost[k] {
						if err := d.DecodePLC(pcm[:frame]); err != nil {
							t.Fatal(err)
						}
						out = append(out, pcm[:frame]...)
						continue
					}
					n, err := d.Decode(g711Tone(c, hz, k), pcm)
					if err != nil || n != frame {
						t.Fatalf("packet %d: %d samples, %v; want %d", k, n, err, frame)
					}
					out = append(out, pcm[:n]...)
				}
				if len(out) != 40*frame {
					t.Fatalf("%d samples for 800 ms, want %d", len(out), 40*frame)
				}
				slot := func(k int) []int16 { return out[k*frame : (k+1)*frame] }
				ref := rms16(slot(9))
				if s, r := toneShare(slot(10), hz, float64(rate)), rms16(slot(10)); s < 0.9 || r < 0.7*ref {
					t.Errorf("the lost packet's slot holds %.2f of its energy at %d Hz, RMS %.0f of %.0f", s, hz, r, ref)
				}
				if r := rms16(slot(20)); r < 0.7*ref {
					t.Errorf("the first 20 ms of a long loss: RMS %.0f of %.0f", r, ref)
				}
				// 60 ms into the loss: silence (but for the Upsampler's 1 ms
				// delay), then nothing at all.
				if r := rms16(slot(23)); r > 0.01*ref {
					t.Errorf("slot 23, 60 ms into the loss: RMS %.0f, want silence", r)
				}
				if r := rms16(slot(24)); r != 0 {
					t.Errorf("slot 24, 80 ms into the loss: RMS %.0f, want silence", r)
				}
				for _, k := range []int{11, 25, 30} {
					if s := toneShare(slot(k), hz, float64(rate)); s < 0.85 {
						t.Errorf("slot %d after the loss holds %.2f at %d Hz", k, s, hz)
					}
				}
				if rate == G711SampleRate {
					limit := 1.3 * 8000 * 2 * math.Pi * hz / G711SampleRate // the tone's steepest step, with room for quantization
					for i := frame; i < len(out); i++ {
						if step := math.Abs(float64(out[i]) - float64(out[i-1])); step > limit {
							t.Errorf("a %.0f step at sample %d (slot %d), the tone's largest is %.0f", step, i, i/frame, limit/1.3)
							break
						}
					}
				}
			})
		}
	}
}

// TestG711DecoderAllocs: decoding and concealing at 16 kHz allocate
// nothing.
func TestG711DecoderAllocs(t *testing.T) {
	d, err := NewG711Decoder(CodecPCMU, 16000)
	if err != nil {
		t.Fatal(err)
	}
	p := g711Tone(CodecPCMU, 440, 0)
	pcm := make([]int16, 320)
	k := 0
	if a := testing.AllocsPerRun(200, func() {
		k++
		if k%5 == 0 {
			_ = d.DecodePLC(pcm)
			return
		}
		_, _ = d.Decode(p, pcm)
	}); a != 0 {
		t.Fatalf("%v allocations per packet", a)
	}
}
