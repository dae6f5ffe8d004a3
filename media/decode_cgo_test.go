//go:build cgo

package media

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

// goertzelPower is the power of x at frequency f (rate fs), normalized by
// the signal's energy: near 1 for a pure tone at f, near 0 elsewhere.
func goertzelPower(x []int16, f, fs float64) float64 {
	w := 2 * math.Pi * f / fs
	var s1, s2, e float64
	for _, v := range x {
		s := float64(v) + 2*math.Cos(w)*s1 - s2
		s2, s1 = s1, s
		e += float64(v) * float64(v)
	}
	p := s1*s1 + s2*s2 - 2*math.Cos(w)*s1*s2
	if e == 0 {
		return 0
	}
	return 2 * p / (float64(len(x)) * e)
}

// encodeTone encodes n 20 ms frames of a 48 kHz tone at f.
func encodeTone(t testing.TB, cfg EncoderConfig, f float64, n int) [][]byte {
	t.Helper()
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pcm := make([]int16, FrameSamples)
	var pkts [][]byte
	for k := range n {
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(k*FrameSamples+i)/SampleRate))
		}
		out := make([]byte, 1500)
		m, err := enc.Encode(pcm, out)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, out[:m])
	}
	return pkts
}

func TestDecoderRatesAndConcealment(t *testing.T) {
	pkts := encodeTone(t, EncoderConfig{Application: AppVoIP, Complexity: 7, Bitrate: 32000, FEC: true, PacketLossPercent: 10}, 440, 30)
	for _, rate := range []int{8000, 16000, 24000, 48000} {
		dec, err := NewDecoder(rate)
		if err != nil {
			t.Fatal(err)
		}
		if dec.SampleRate() != rate {
			t.Fatalf("SampleRate %d", dec.SampleRate())
		}
		frame := rate / 50
		pcm := make([]int16, 6*frame)
		var all []int16
		for k, p := range pkts {
			samples, err := OpusPacketSamples(p)
			if err != nil || samples != FrameSamples {
				t.Fatalf("packet %d: %d samples, %v", k, samples, err)
			}
			switch k {
			case 20: // lost: recovered from packet 21's FEC
				if err := dec.DecodeFEC(pkts[21], pcm[:frame]); err != nil {
					t.Fatal(err)
				}
				all = append(all, pcm[:frame]...)
				continue
			case 25: // lost: plain concealment
				if err := dec.DecodePLC(pcm[:frame]); err != nil {
					t.Fatal(err)
				}
				all = append(all, pcm[:frame]...)
				continue
			}
			n, err := dec.Decode(p, pcm)
			if err != nil {
				t.Fatal(err)
			}
			if n != frame {
				t.Fatalf("%d Hz: decoded %d samples, want %d", rate, n, frame)
			}
			all = append(all, pcm[:n]...)
		}
		// The tone is at 440 Hz in the steady part, concealed frames
		// included.
		for _, k := range []int{10, 20, 25} {
			fr := all[k*frame : (k+1)*frame]
			if p := goertzelPower(fr, 440, float64(rate)); p < 0.5 {
				t.Errorf("%d Hz frame %d: 440 Hz holds %.2f of the energy", rate, k, p)
			}
			if p := goertzelPower(fr, 1000, float64(rate)); p > 0.1 {
				t.Errorf("%d Hz frame %d: 1000 Hz holds %.2f of the energy", rate, k, p)
			}
		}
		allocs := testing.AllocsPerRun(100, func() {
			_, _ = dec.Decode(pkts[5], pcm)
			_ = dec.DecodePLC(pcm[:frame])
			_ = dec.DecodeFEC(pkts[6], pcm[:frame])
		})
		if allocs != 0 {
			t.Errorf("%d Hz: %v allocations per decode", rate, allocs)
		}
	}
	if _, err := NewDecoder(44100); !errors.Is(err, ErrUnsupportedRate) {
		t.Fatalf("44100: %v", err)
	}
}

// BenchmarkOpusDecode is the receive path's per-packet cost by output rate:
// libopus decodes straight to the rate a bot listens at, so 16 kHz costs
// less than decoding at 48 kHz, and needs no resampler after it.
func BenchmarkOpusDecode(b *testing.B) {
	// celt: the bridge's own encoder default; voip: SILK/hybrid at 32 kbit/s,
	// what browsers send for speech.
	voip := encodeTone(b, EncoderConfig{Application: AppVoIP, Bitrate: 32000, FEC: true}, 440, 50)
	celt := encodeTone(b, EncoderConfig{}, 440, 50)
	pkts := voip
	for _, c := range []struct {
		name string
		rate int
		pkts [][]byte
	}{{"voip", 8000, voip}, {"voip", 16000, voip}, {"voip", 24000, voip}, {"voip", 48000, voip}, {"celt", 16000, celt}, {"celt", 48000, celt}} {
		rate, pkts := c.rate, c.pkts
		b.Run(c.name+strconv.Itoa(rate), func(b *testing.B) {
			dec, err := NewDecoder(rate)
			if err != nil {
				b.Fatal(err)
			}
			pcm := make([]int16, 5760)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := dec.Decode(pkts[i%len(pkts)], pcm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("plc16000", func(b *testing.B) {
		dec, err := NewDecoder(16000)
		if err != nil {
			b.Fatal(err)
		}
		pcm := make([]int16, 320)
		if _, err := dec.Decode(pkts[0], pcm); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := dec.DecodePLC(pcm); err != nil {
				b.Fatal(err)
			}
		}
	})
}
