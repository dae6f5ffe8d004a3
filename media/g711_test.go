package media

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// tonePCM is n samples of a sine at f Hz, amplitude a, at rate, as PCM16LE.
func tonePCM(n, rate int, f, a float64) []byte {
	b := make([]byte, 2*n)
	for i := range n {
		v := int16(a * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// TestG711Stream: a G.711 stream sends 160-byte packets with timestamps
// +160 on the 20 ms grid, the precomputed silence payload between
// talkspurts, and pcm_8000 audio passes through untouched but for G.711's
// quantization (no resampler), for both laws; pcm_16000 is resampled to
// 8 kHz and keeps its tone.
func TestG711Stream(t *testing.T) {
	for _, c := range []Codec{CodecPCMU, CodecPCMA} {
		for _, rate := range []int{8000, 16000} {
			t.Run(c.String()+"/"+map[int]string{8000: "8k", 16000: "16k"}[rate], func(t *testing.T) {
				h := newHarness(t, harnessOpt{realCodec: true, cfg: StreamConfig{Codec: c}})
				ctx := context.Background()
				in := tonePCM(rate/2, rate, 440, 8000) // 500 ms
				if err := h.s.Write(ctx, in, rate); err != nil {
					t.Fatal(err)
				}
				if err := h.s.EndGeneration(ctx); err != nil {
					t.Fatal(err)
				}
				h.stepUntil(100, func() bool { return h.doneCount() == 1 })
				h.steps(2)
				h.stop()
				pkts := h.rec.packets()
				var out []int16
				speech := 0
				for i, p := range pkts {
					if len(p.Payload) != G711FrameSamples {
						t.Fatalf("packet %d: %d bytes", i, len(p.Payload))
					}
					if p.PayloadType != c.PayloadType() {
						t.Fatalf("packet %d: payload type %d", i, p.PayloadType)
					}
					if i > 0 && (p.Timestamp-pkts[i-1].Timestamp != G711FrameSamples || p.SequenceNumber != pkts[i-1].SequenceNumber+1) {
						t.Fatalf("packet %d: ts step %d, seq %d after %d", i, p.Timestamp-pkts[i-1].Timestamp, p.SequenceNumber, pkts[i-1].SequenceNumber)
					}
					if string(p.Payload) == string(G711Silence(c)) {
						continue
					}
					speech++
					pcm := make([]int16, G711FrameSamples)
					DecodeG711(pcm, p.Payload, c)
					out = append(out, pcm...)
				}
				if speech != 25 {
					t.Fatalf("%d speech packets, want 25 (500 ms); frames %s", speech, h.frameString())
				}
				if rate == 8000 {
					// Pass-through: sample for sample, within G.711's step.
					for i := range out {
						want := int16(binary.LittleEndian.Uint16(in[2*i:]))
						if d := math.Abs(float64(out[i]) - float64(want)); d > 300 {
							t.Fatalf("sample %d: %d, sent %d", i, out[i], want)
						}
					}
					return
				}
				x := make([]float64, 4000)
				var e float64
				for i := range x {
					x[i] = float64(out[i])
					e += x[i] * x[i]
				}
				if share := goertzel(x, 440, 8000) / (e * float64(len(x)) / 2); share < 0.9 {
					t.Fatalf("440 Hz holds %.2f of the energy after 16k→8k", share)
				}
			})
		}
	}
}

func goertzel(x []float64, f, fs float64) float64 {
	c := 2 * math.Cos(2*math.Pi*f/fs)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// TestG711Codec: parsing, bad codecs, decoder input checks, silence.
func TestG711Codec(t *testing.T) {
	for _, s := range []string{"opus", "pcmu", "pcma"} {
		c, err := ParseCodec(s)
		if err != nil || c.String() != s {
			t.Fatalf("ParseCodec(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCodec("g729"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("ParseCodec(g729): %v", err)
	}
	if _, err := NewStream(StreamConfig{Writer: &recorder{}, Codec: Codec(7)}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewStream with codec 7: %v", err)
	}
	if _, err := NewG711Decoder(CodecOpus, 8000); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewG711Decoder(opus): %v", err)
	}
	for _, rate := range []int{0, 11025, 12000, 44100} {
		if _, err := NewG711Decoder(CodecPCMU, rate); !errors.Is(err, ErrUnsupportedRate) {
			t.Fatalf("NewG711Decoder at %d Hz: %v", rate, err)
		}
	}
	d, err := NewG711Decoder(CodecPCMA, 8000)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 160)
	if _, err := d.Decode(make([]byte, 161), pcm); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("oversized packet: %v", err)
	}
	if _, err := d.Decode(nil, pcm); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("empty packet: %v", err)
	}
	if n, err := d.Decode(G711Silence(CodecPCMA), pcm); err != nil || n != 160 || d.SampleRate() != 8000 {
		t.Fatalf("silence: %d, %v", n, err)
	}
	for i, v := range pcm {
		if v < -16 || v > 16 {
			t.Fatalf("silence decodes to %d at %d", v, i)
		}
	}
	d16, err := NewG711Decoder(CodecPCMU, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if err := d16.DecodePLC(make([]int16, 3)); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("concealing half a sample: %v", err)
	}
	if _, err := d16.Decode(G711Silence(CodecPCMU), make([]int16, 160)); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("160 samples at 16 kHz into room for 160: %v", err)
	}
	if _, err := NewResamplerTo(nil, 8000, 44100, ResampleDefault); !errors.Is(err, ErrUnsupportedRate) {
		t.Fatalf("resampler to 44100: %v", err)
	}
}
