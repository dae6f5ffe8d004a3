//go:build cgo

package media

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

var qualities = []ResamplerQuality{ResampleQuick, ResampleLow, ResampleMedium, ResampleHigh, ResampleVeryHigh}

// BenchmarkResampler: one op = one 20 ms chunk through libsoxr (the unit we
// feed). cpu-ns/frame is the same in thread CPU time (robust against other
// load on a shared machine). Metrics: heldback-ms, the output soxr holds back until Flush after
// 1 s of 20 ms chunks (latency added to a generation's first frame); snr-dB
// of a tone at 0.4 × the input rate (imaging and passband error) and its
// level-dB (roll-off); firstframe-ms, the input fed in 20 ms chunks before
// the first 960 output samples come out (time to first audio).
func BenchmarkResampler(b *testing.B) {
	for _, q := range qualities {
		for _, rate := range []int{8000, 16000, 22050, 24000} {
			b.Run(fmt.Sprintf("%s/%d", q, rate), func(b *testing.B) {
				chunk := rate / 50
				sig := tone(rate, 0.4*float64(rate), testAmp, 0, 0, rate)
				// Held back and quality.
				var out bytesWriter
				r, err := NewResampler(&out, rate, q)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < len(sig); i += 2 * chunk {
					_, _ = r.Write(sig[i:min(len(sig), i+2*chunk)])
				}
				held := SampleRate - len(out.b)/2
				_ = r.Flush()
				// First frame: input fed (in 20 ms chunks) before soxr
				// released 960 samples.
				var first bytesWriter
				r2, err := NewResampler(&first, rate, q)
				if err != nil {
					b.Fatal(err)
				}
				firstMs := -1
				for i := 0; i < len(sig); i += 2 * chunk {
					_, _ = r2.Write(sig[i:min(len(sig), i+2*chunk)])
					if len(first.b)/2 >= FrameSamples {
						firstMs = (i/2 + chunk) * 1000 / rate
						break
					}
				}
				_ = r2.Close()
				_ = r.Close()
				y := toFloat(out.samples())
				fit := fitTone(y[4800:43200], 0.4*float64(rate), SampleRate)
				snr := db(fit.amp / math.Sqrt2 / fit.rms)

				cw := &countWriter{}
				r, err = NewResampler(cw, rate, q)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				b.ResetTimer()
				c0 := threadCPU(b)
				for i := 0; i < b.N; i++ {
					off := (i * 2 * chunk) % (len(sig) - 2*chunk)
					if _, err := r.Write(sig[off : off+2*chunk]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((threadCPU(b)-c0).Nanoseconds())/float64(b.N), "cpu-ns/frame")
				b.ReportMetric(float64(held)*1000/SampleRate, "heldback-ms")
				b.ReportMetric(snr, "snr-dB")
				b.ReportMetric(db(fit.amp/testAmp), "level-dB")
				b.ReportMetric(float64(firstMs), "firstframe-ms")
			})
		}
	}
}

type encSetting struct {
	name string
	cfg  EncoderConfig
}

var encSettings = []encSetting{
	{"voip-c1-32k", EncoderConfig{Application: AppVoIP, Complexity: 1, Bitrate: 32000}},
	{"voip-c5-32k", EncoderConfig{Application: AppVoIP, Complexity: 5, Bitrate: 32000}},
	{"voip-c10-32k", EncoderConfig{Application: AppVoIP, Complexity: 10, Bitrate: 32000}},
	{"voip-c5-24k", EncoderConfig{Application: AppVoIP, Complexity: 5, Bitrate: 24000}},
	{"audio-c1-32k", EncoderConfig{Application: AppAudio, Complexity: 1, Bitrate: 32000}},
	{"audio-c3-32k", EncoderConfig{Application: AppAudio, Complexity: 3, Bitrate: 32000}},
	{"audio-c5-32k", EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 32000}},
	{"audio-c6-32k", EncoderConfig{Application: AppAudio, Complexity: 6, Bitrate: 32000}},
	{"audio-c7-32k", EncoderConfig{Application: AppAudio, Complexity: 7, Bitrate: 32000}},
	{"audio-c10-32k", EncoderConfig{Application: AppAudio, Complexity: 10, Bitrate: 32000}},
	{"audio-c5-24k", EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 24000}},
	{"audio-c5-40k", EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 40000}},
	{"audio-c5-48k", EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 48000}},
	{"audio-c1-48k", EncoderConfig{Application: AppAudio, Complexity: 1, Bitrate: 48000}},
	{"audio-c3-48k", EncoderConfig{Application: AppAudio, Complexity: 3, Bitrate: 48000}},
	{"audio-c5-64k", EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 64000}},
	{"voip-c5-48k", EncoderConfig{Application: AppVoIP, Complexity: 5, Bitrate: 48000}},
	{"audio-c10-48k", EncoderConfig{Application: AppAudio, Complexity: 10, Bitrate: 48000}},
	{"audio-c6-24k", EncoderConfig{Application: AppAudio, Complexity: 6, Bitrate: 24000}},
	{"lowdelay-c5-32k", EncoderConfig{Application: AppRestrictedLowDelay, Complexity: 5, Bitrate: 32000}},
}

// BenchmarkEncoderSettings: one op = one 20 ms frame of speech through
// libopus at each setting; cpu-ns/frame in thread CPU time. Quality, measured before timing by decoding the
// whole clip and comparing with the input: snr-dB (waveform), lsd-dB
// (log-spectral distance, lower is better), kbps actually produced.
func BenchmarkEncoderSettings(b *testing.B) {
	_, pcm, src := speech(b)
	b.Logf("speech: %s, %.1f s", src, float64(len(pcm))/SampleRate)
	for _, st := range encSettings {
		b.Run(st.name, func(b *testing.B) {
			snr, lsd, kbps := codecQuality(b, st.cfg, pcm)
			enc, err := NewEncoder(st.cfg)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]byte, 1500)
			frames := len(pcm) / FrameSamples
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			c0 := threadCPU(b)
			for i := 0; i < b.N; i++ {
				f := i % frames
				if _, err := enc.Encode(pcm[f*FrameSamples:(f+1)*FrameSamples], out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((threadCPU(b)-c0).Nanoseconds())/float64(b.N), "cpu-ns/frame")
			b.ReportMetric(snr, "snr-dB")
			b.ReportMetric(lsd, "lsd-dB")
			b.ReportMetric(kbps, "kbps")
		})
	}
}

// marshalWriter serializes each packet into a fixed buffer, the work pion
// does on the way to SRTP, without a network.
type marshalWriter struct{ buf [1500]byte }

func (w *marshalWriter) WriteRTP(p *rtp.Packet) error {
	_, err := p.MarshalTo(w.buf[:])
	return err
}

func benchStream(b *testing.B, cfg EncoderConfig, q ResamplerQuality) *Stream {
	b.Helper()
	// No pre-roll: the benchmarks call sendFrame at one clock reading, so a
	// talkspurt would never start; they measure the per-frame path.
	s, err := NewStream(StreamConfig{Writer: &marshalWriter{}, Encoder: cfg, Resampler: q, PreRoll: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkPathVsBare: one op = one 20 ms frame of continuous speech. The
// path is the whole stream: Write of the TTS chunk (carry, libsoxr, queue)
// once per chunk, and one pacer frame (pop, libopus, RTP packet, WriteRTP).
// Bare is a second libopus encoder at the same settings encoding copies of
// exactly the frames the path just encoded, in alternating blocks of 50
// frames, each side measured in thread CPU time, so that both see the same
// audio and other processes on the machine do not count. write-ns/frame
// is the Write share of the path (carry, libsoxr, queue push). Reported: path-ns/frame, bare-ns/frame and their ratio
// (goal ≤ 1.05), for 20 ms chunks (worst case: one libsoxr call per frame)
// and 100 ms chunks. allocs/op are the path's (bare allocates nothing):
// zaf/resample's C.GoBytes, once per resampler call, i.e. per chunk.
func BenchmarkPathVsBare(b *testing.B) {
	pcm24, _, _ := speech(b)
	settings := []encSetting{{"default", EncoderConfig{}}, encSettings[1], encSettings[9]}
	for _, st := range settings {
		for _, q := range []ResamplerQuality{ResampleLow, ResampleMedium, ResampleHigh} {
			for _, chunkMs := range []int{20, 100} {
				b.Run(fmt.Sprintf("%s/%s/chunk%dms", st.name, q, chunkMs), func(b *testing.B) {
					benchPathVsBare(b, st.cfg, q, chunkMs, pcm24)
				})
			}
		}
	}
}

func benchPathVsBare(b *testing.B, cfg EncoderConfig, q ResamplerQuality, chunkMs int, pcm24 []byte) {
	s := benchStream(b, cfg, q)
	ctx := context.Background()
	per := chunkMs / 20 // frames per chunk
	chunk := 24000 * chunkMs / 1000 * 2
	chunks := len(pcm24) / chunk
	now := time.Now()
	bare, err := NewEncoder(cfg)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 1500)
	const block = 50
	same := make([]int16, block*FrameSamples)
	// Thread CPU time, so that other processes on this shared machine do
	// not land in one side's measurement.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var path, bareD, writeD time.Duration
	c := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		k := min(block, b.N-i)
		t0 := threadCPU(b)
		for j := range k {
			if (i+j)%per == 0 {
				w0 := threadCPU(b)
				if err := s.Write(ctx, pcm24[c*chunk:(c+1)*chunk], 24000); err != nil {
					b.Fatal(err)
				}
				writeD += threadCPU(b) - w0
				c = (c + 1) % chunks
			}
			s.sendFrame(int64(i+j), now, 0)
			copy(same[j*FrameSamples:], s.frame) // exactly the frame the path encoded
		}
		t1 := threadCPU(b)
		for j := range k {
			if _, err := bare.Encode(same[j*FrameSamples:(j+1)*FrameSamples], out); err != nil {
				b.Fatal(err)
			}
		}
		t2 := threadCPU(b)
		path += t1 - t0
		bareD += t2 - t1
		i += k
	}
	b.StopTimer()
	pathNs := float64(path.Nanoseconds()) / float64(b.N)
	bareNs := float64(bareD.Nanoseconds()) / float64(b.N)
	b.ReportMetric(pathNs, "path-ns/frame")
	b.ReportMetric(bareNs, "bare-ns/frame")
	b.ReportMetric(pathNs/bareNs, "ratio")
	b.ReportMetric(float64(writeD.Nanoseconds())/float64(b.N), "write-ns/frame")
	if st := s.Stats(); b.N > 100 && st.SpeechFrames < uint64(b.N)*9/10 {
		b.Fatalf("only %d of %d frames were speech", st.SpeechFrames, b.N)
	}
}

func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// BenchmarkPacerFrame: one op = one frame along the per-frame path: queue
// push of 960 samples, pop, libopus encode (default settings), RTP packet,
// WriteRTP. Must report 0 allocs/op.
func BenchmarkPacerFrame(b *testing.B) {
	_, pcm48, _ := speech(b)
	s := benchStream(b, EncoderConfig{}, ResampleDefault)
	frames := len(pcm48) / FrameSamples
	now := time.Now()
	epoch := s.q.currentEpoch()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := i % frames
		if _, err := s.q.push(epoch, pcm48[f*FrameSamples:(f+1)*FrameSamples], 0); err != nil {
			b.Fatal(err)
		}
		s.sendFrame(int64(i), now, 0)
	}
	b.StopTimer()
	if st := s.Stats(); st.SpeechFrames != uint64(b.N) {
		b.Fatalf("%d speech frames of %d: the benchmark measured silence", st.SpeechFrames, b.N)
	}
}

// BenchmarkIdleFrame: one op = one frame of an idle stream: the
// precomputed silence packet, no encoder run. ×50 per second per call.
func BenchmarkIdleFrame(b *testing.B) {
	s := benchStream(b, EncoderConfig{}, ResampleDefault)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.sendFrame(int64(i), now, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*50/1e9*100, "%cpu/stream")
}
