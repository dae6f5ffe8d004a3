package media

import (
	"fmt"
	"io"
	"time"
)

// Wire format constants. Opus in RTP always uses a 48 kHz clock (RFC 7587
// §4.1); we send 20 ms frames, so the timestamp advances by 960 per packet.
const (
	// SampleRate is the rate of everything after the resampler.
	SampleRate = 48000
	// FrameSamples is the number of samples in one 20 ms frame at 48 kHz.
	FrameSamples = 960
	// FrameDuration is the duration of one frame.
	FrameDuration = 20 * time.Millisecond

	// maxOpusPacket is the largest one-frame Opus packet (RFC 6716 §3.4, R2).
	maxOpusPacket = 1275
)

// Application selects the libopus coding mode family (OPUS_APPLICATION_*).
// The zero value selects the measured default (see EncoderConfig).
type Application int

// Applications.
const (
	AppDefault            Application = iota // AppAudio, see DefaultEncoderConfig
	AppVoIP                                  // OPUS_APPLICATION_VOIP: SILK/hybrid for speech
	AppAudio                                 // OPUS_APPLICATION_AUDIO: CELT at complexity <= 6
	AppRestrictedLowDelay                    // OPUS_APPLICATION_RESTRICTED_LOWDELAY: CELT only, 2.5 ms lookahead
)

func (a Application) String() string {
	switch a {
	case AppDefault:
		return "default"
	case AppVoIP:
		return "voip"
	case AppAudio:
		return "audio"
	case AppRestrictedLowDelay:
		return "lowdelay"
	}
	return fmt.Sprintf("Application(%d)", int(a))
}

// EncoderConfig configures the Opus encoder (48 kHz, mono). The zero value
// is the measured default: see DefaultEncoderConfig and the package README
// for the cost/quality table it was chosen from.
type EncoderConfig struct {
	// Application: if zero, AppAudio.
	Application Application
	// Complexity 1..10: if zero, 5.
	Complexity int
	// Bitrate in bit/s, 6000..510000: if zero, 48000.
	Bitrate int
	// FEC turns on in-band forward error correction (only effective in SILK
	// and hybrid modes, i.e. AppVoIP or complexity >= 7).
	FEC bool
	// PacketLossPercent 0..100 is the expected loss the encoder plans for.
	PacketLossPercent int
	// DTX lets the encoder emit tiny packets for silence inside speech.
	DTX bool
}

// DefaultEncoderConfig is what the zero EncoderConfig means: CELT-only
// (AppAudio, complexity 5) at 48 kbit/s. Measured on speech
// (BenchmarkEncoderSettings, thread CPU, media README): ~54 µs per frame
// against ~140-300 µs for the hybrid modes (AppVoIP, or AppAudio at
// complexity >= 7),
// with a better match to the input than hybrid at 32 kbit/s (log-spectral
// distance 6.1 dB vs 6.4-6.7 dB, waveform SNR 17.6 dB vs 7-10 dB). Complexity
// 5 is the lowest with CELT's pitch pre-filter (+1.7 dB SNR on voiced
// speech over complexity 1-3); 6 produces the same packets for more CPU.
// FEC only exists in SILK/hybrid frames, so it needs AppVoIP.
var DefaultEncoderConfig = EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 48000}

func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.Application == AppDefault {
		c.Application = DefaultEncoderConfig.Application
	}
	if c.Complexity == 0 {
		c.Complexity = DefaultEncoderConfig.Complexity
	}
	if c.Bitrate == 0 {
		c.Bitrate = DefaultEncoderConfig.Bitrate
	}
	return c
}

// Validate reports a field out of range, wrapped in ErrInvalidConfig.
func (c EncoderConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Application < AppVoIP || c.Application > AppRestrictedLowDelay:
		return fmt.Errorf("%w: encoder application %d", ErrInvalidConfig, int(c.Application))
	case c.Complexity < 1 || c.Complexity > 10:
		return fmt.Errorf("%w: encoder complexity %d not in 1..10", ErrInvalidConfig, c.Complexity)
	case c.Bitrate < 6000 || c.Bitrate > 510000:
		return fmt.Errorf("%w: encoder bitrate %d not in 6000..510000", ErrInvalidConfig, c.Bitrate)
	case c.PacketLossPercent < 0 || c.PacketLossPercent > 100:
		return fmt.Errorf("%w: encoder packet loss %d%% not in 0..100", ErrInvalidConfig, c.PacketLossPercent)
	}
	return nil
}

// Encoder encodes one 20 ms frame of 48 kHz mono PCM to one Opus packet.
// It is used from one goroutine at a time (the pacer).
type Encoder interface {
	// Encode encodes exactly FrameSamples samples into out and returns the
	// packet length. out is owned by the caller; pcm is not retained.
	Encode(pcm []int16, out []byte) (int, error)
	// Reset drops the encoder's inter-frame state (start of a talkspurt).
	Reset() error
	// Lookahead is the encoder delay in samples at 48 kHz: audio in the last
	// Lookahead samples of a frame only leaves with the next frame.
	Lookahead() int
	// Close frees the encoder. Idempotent.
	Close() error
}

// NewEncoder returns a libopus encoder for cfg (defaults applied). Without
// cgo it returns ErrCodecUnavailable.
func NewEncoder(cfg EncoderConfig) (Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newOpusEncoder(cfg.withDefaults())
}

// ResamplerQuality selects libsoxr's quality recipe. The zero value selects
// the measured default (see DefaultResamplerQuality).
type ResamplerQuality int

// Resampler qualities (SOXR_QQ .. SOXR_VHQ).
const (
	ResampleDefault  ResamplerQuality = iota // DefaultResamplerQuality
	ResampleQuick                            // SOXR_QQ: cubic interpolation, no anti-imaging filter
	ResampleLow                              // SOXR_LQ: 16-bit, larger roll-off
	ResampleMedium                           // SOXR_MQ: 16-bit, medium roll-off
	ResampleHigh                             // SOXR_HQ: 20-bit
	ResampleVeryHigh                         // SOXR_VHQ: 28-bit
)

// DefaultResamplerQuality is what ResampleDefault means, chosen with
// BenchmarkResampler (media README). Every quality costs about the same
// here (libsoxr ~3 µs per 20 ms mono chunk in C, ~5-7 µs through
// zaf/resample), so latency and fidelity decide. Medium is the lowest with a
// flat passband (0.0 dB at 0.4 × the input rate; Low rolls off 2.1 dB, Quick
// 3 dB with 9 dB SNR from imaging) and releases the first 20 ms frame after
// 40 ms of 16/24 kHz input (60 ms at 22.05 kHz, 80 ms at 8 kHz), where High
// and VeryHigh need up to 160 ms at 8 kHz. The ~38-92 ms it holds back come
// out at EndGeneration (Flush), or earlier when the pacer drains the stream
// (zeros fed in, see StreamConfig.PreRoll).
const DefaultResamplerQuality = ResampleMedium

func (q ResamplerQuality) String() string {
	switch q {
	case ResampleDefault:
		return "default"
	case ResampleQuick:
		return "quick"
	case ResampleLow:
		return "low"
	case ResampleMedium:
		return "medium"
	case ResampleHigh:
		return "high"
	case ResampleVeryHigh:
		return "veryhigh"
	}
	return fmt.Sprintf("ResamplerQuality(%d)", int(q))
}

// Resampler converts a stream of PCM16LE mono samples at one input rate to
// 48 kHz PCM16LE, writing its output to the io.Writer given to its
// constructor, synchronously from inside Write and Flush. Filter state
// carries across Write calls whatever their sizes. Used from one goroutine.
type Resampler interface {
	// Write takes whole samples only (an even number of bytes).
	io.Writer
	// Flush writes the held-back tail (the end of the segment) and resets
	// the state so that the next Write starts a new segment.
	Flush() error
	// Close frees the resampler without writing anything more. Idempotent.
	io.Closer
}

// NewResampler returns a libsoxr resampler from inRate to 48 kHz writing to
// dst. Without cgo it returns ErrCodecUnavailable.
func NewResampler(dst io.Writer, inRate int, q ResamplerQuality) (Resampler, error) {
	if !supportedRate(inRate) {
		return nil, fmt.Errorf("%w: %d Hz", ErrUnsupportedRate, inRate)
	}
	if q == ResampleDefault {
		q = DefaultResamplerQuality
	}
	if q < ResampleQuick || q > ResampleVeryHigh {
		return nil, fmt.Errorf("%w: resampler quality %d", ErrInvalidConfig, int(q))
	}
	return newSoxrResampler(dst, inRate, SampleRate, q)
}

// NewResamplerTo is NewResampler to outRate: 48000 (Opus) or 8000 (G.711).
// When inRate is outRate it returns a pass-through (no filter, no delay,
// pure Go).
func NewResamplerTo(dst io.Writer, inRate, outRate int, q ResamplerQuality) (Resampler, error) {
	if outRate != SampleRate && outRate != G711SampleRate {
		return nil, fmt.Errorf("%w: output rate %d Hz", ErrUnsupportedRate, outRate)
	}
	if outRate == SampleRate {
		return NewResampler(dst, inRate, q)
	}
	if !supportedRate(inRate) {
		return nil, fmt.Errorf("%w: %d Hz", ErrUnsupportedRate, inRate)
	}
	if inRate == outRate {
		return &passResampler{dst: dst}, nil
	}
	if q == ResampleDefault {
		q = DefaultResamplerQuality
	}
	if q < ResampleQuick || q > ResampleVeryHigh {
		return nil, fmt.Errorf("%w: resampler quality %d", ErrInvalidConfig, int(q))
	}
	return newSoxrResampler(dst, inRate, outRate, q)
}

// passResampler is the Resampler from a rate to itself: it writes its input
// through.
type passResampler struct {
	dst    io.Writer
	closed bool
}

func (r *passResampler) Write(p []byte) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	return r.dst.Write(p)
}

func (r *passResampler) Flush() error {
	if r.closed {
		return ErrClosed
	}
	return nil
}

func (r *passResampler) Close() error { r.closed = true; return nil }

// supportedRate reports the TTS output rates we accept (pcm_8000 .. pcm_24000).
func supportedRate(r int) bool {
	switch r {
	case 8000, 16000, 22050, 24000:
		return true
	}
	return false
}
