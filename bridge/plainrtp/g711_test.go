package plainrtp

import (
	"math"
	"testing"
)

func TestG711RoundTrip(t *testing.T) {
	pcm := make([]int16, FrameSamples)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	for _, law := range []uint8{PayloadPCMU, PayloadPCMA} {
		payload := make([]byte, FrameSamples)
		if n := EncodeG711(payload, pcm, law); n != FrameSamples {
			t.Fatalf("law %d: encoded %d bytes", law, n)
		}
		out := make([]int16, FrameSamples)
		DecodeG711(out, payload, law)
		for i := range pcm {
			// G.711 is logarithmic: at 8000 the step is 256 (µ) / 256 (A).
			if d := math.Abs(float64(out[i]) - float64(pcm[i])); d > 300 {
				t.Fatalf("law %d sample %d: %d → %d", law, i, pcm[i], out[i])
			}
		}
		allocs := testing.AllocsPerRun(100, func() { EncodeG711(payload, pcm, law) })
		if allocs != 0 {
			t.Errorf("law %d: EncodeG711 allocates %v", law, allocs)
		}
	}
	if s := SilencePayload(PayloadPCMU); len(s) != FrameSamples || s[0] != 0xFF {
		t.Errorf("PCMU silence %x…, want 160 × ff", s[:1])
	}
	if s := SilencePayload(PayloadPCMA); len(s) != FrameSamples || s[0] != 0xD5 {
		t.Errorf("PCMA silence %x…, want 160 × d5", s[:1])
	}
}
