//go:build cgo

package bridge

import (
	"math"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"

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
	l := &rxLoop{m: newCallerMetrics(prometheus.NewRegistry()), jb: jb, clock: media.SampleRate,
		codecs: rxCodecs{audio: 111, codec: media.CodecOpus, hasAudio: true}}
	l.makeRates()
	sinks := []*audioSink{newAudioSink(16000), newAudioSink(48000)}
	for i, r := range listenRatesHz {
		for _, s := range sinks {
			if s.rate == r {
				l.rates[i].sinks = append(l.rates[i].sinks, s)
				if l.rates[i].dec, err = media.NewDecoder(r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	rp := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: pkt}
	bufs := [][]byte{make([]byte, sinks[0].frameBytes), make([]byte, sinks[1].frameBytes)}
	start := time.Now()
	k := 0
	step := func() {
		now := start.Add(time.Duration(k) * media.FrameDuration)
		if k%10 != 5 { // one packet in ten is lost: concealment is per-frame work too
			rp.SequenceNumber, rp.Timestamp = uint16(k), uint32(k*media.FrameSamples)
			l.packet(&rp, now)
		}
		k++
		for {
			s := jb.Pop(now)
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
	if st := jb.Stats(); st.Concealed < 40 || st.FEC < 40 || st.Late != 0 || st.Received < 400 {
		t.Fatalf("no concealment exercised, or packets refused: %+v", st)
	}
}

// TestCallerPlayCutsFrames: packets of 10, 20, 40 and 60 ms, and 10 ms
// concealments, all come out as exact 20 ms messages, as many as the audio
// lasts, at every rate.
func TestCallerPlayCutsFrames(t *testing.T) {
	enc, err := opus.NewEncoder(48000, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := media.NewJitterBuffer(media.JitterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := &rxLoop{m: newCallerMetrics(prometheus.NewRegistry()), jb: jb, clock: media.SampleRate}
	l.makeRates()
	var sinks []*audioSink
	for i, r := range listenRatesHz {
		s := newAudioSink(r)
		sinks = append(sinks, s)
		dec, err := media.NewDecoder(r)
		if err != nil {
			t.Fatal(err)
		}
		l.rates[i].dec, l.rates[i].sinks = dec, []*audioSink{s}
	}
	total := 0 // 48 kHz samples played
	counts := make([]int, len(sinks))
	drainSinks := func() {
		for i, s := range sinks {
			buf := make([]byte, s.frameBytes)
			for {
				if _, ok := s.pop(buf); !ok {
					break
				}
				counts[i]++
			}
		}
	}
	for _, ms := range []int{10, 10, 20, 40, 10, 60, 10, 20, 20} {
		pcm := make([]int16, ms*48)
		for i := range pcm {
			pcm[i] = int16(3000 * math.Sin(float64(total+i)/10))
		}
		pkt := make([]byte, 1500)
		n, err := enc.Encode(pcm, pkt)
		if err != nil {
			t.Fatal(err)
		}
		l.play(media.JitterStep{Kind: media.StepPacket, Payload: pkt[:n], Samples: ms * 48, Arrival: time.Now()})
		total += ms * 48
		drainSinks()
	}
	// A 10 ms concealment (a gap shorter than a frame).
	l.play(media.JitterStep{Kind: media.StepConceal, Samples: 480})
	total += 480
	drainSinks()
	for i, s := range sinks {
		if want := total / media.FrameSamples; counts[i] != want {
			t.Errorf("%d Hz: %d messages for %d ms, want %d", s.rate, counts[i], total/48, want)
		}
	}
}
