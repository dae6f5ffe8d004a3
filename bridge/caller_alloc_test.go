//go:build cgo

package bridge

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/voicebridge/voicebridge/media"
)

// TestCallerFramePathAllocs: the receive path's per-packet work — jitter
// buffer, decoding at two rates, the frames queued on two sockets and
// popped by their writers — allocates nothing in steady state.
func TestCallerFramePathAllocs(t *testing.T) {
	enc, err := media.NewEncoder(media.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pcm := make([]int16, media.FrameSamples)
	for i := range pcm {
		pcm[i] = int16(i * 37)
	}
	pkt := make([]byte, 1500)
	n, err := enc.Encode(pcm, pkt)
	if err != nil {
		t.Fatal(err)
	}
	pkt = pkt[:n]

	jb, err := media.NewJitterBuffer(media.JitterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := &rxLoop{m: newCallerMetrics(prometheus.NewRegistry()), jb: jb}
	sinks := []*audioSink{newAudioSink(16000), newAudioSink(48000)}
	for i, r := range []int{8000, 16000, 24000, 48000} {
		l.rates[i] = rxRate{rate: r, fifo: make([]int16, (5760+media.FrameSamples)*r/media.SampleRate), frame: make([]byte, r/50*2)}
		for _, s := range sinks {
			if s.rate == r {
				l.rates[i].sinks = append(l.rates[i].sinks, s)
				if l.rates[i].dec, err = media.NewDecoder(r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	bufs := [][]byte{make([]byte, sinks[0].frameBytes), make([]byte, sinks[1].frameBytes)}
	start := time.Now()
	k := 0
	step := func() {
		now := start.Add(time.Duration(k) * media.FrameDuration)
		if k%10 != 5 { // one packet in ten is lost: concealment is per-frame work too
			if _, err := jb.Push(uint32(k*media.FrameSamples), pkt, media.FrameSamples, now); err != nil {
				t.Fatal(err)
			}
		}
		k++
		for {
			s := jb.Pop(now.Add(100 * time.Millisecond))
			if s.Kind == media.StepNone {
				break
			}
			l.play(s)
		}
		for i, s := range sinks {
			for {
				if _, ok := s.pop(bufs[i]); !ok {
					break
				}
			}
		}
	}
	for range 20 {
		step()
	}
	if a := testing.AllocsPerRun(500, step); a != 0 {
		t.Fatalf("%v allocations per packet", a)
	}
	if st := jb.Stats(); st.Concealed == 0 {
		t.Fatalf("no concealment exercised: %+v", st)
	}
}
