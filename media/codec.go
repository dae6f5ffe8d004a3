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
	// Bitrate in bit/s, 6000..510000: if zero, 32000.
	Bitrate int
	// FEC turns on in-band forward error correction (only effective in SILK
	// and hybrid modes, i.e. AppVoIP or complexity >= 7).
	FEC bool
	// PacketLossPercent 0..100 is the expected loss the encoder plans for.
	PacketLossPercent int
	// DTX lets the encoder emit tiny packets for silence inside speech.
	DTX bool
}

// DefaultEncoderConfig is what the zero EncoderConfig means. CELT-only
// (AppAudio at complexity 5) at 32 kbit/s: measured ~40 µs per frame against
// ~150-400 µs for the hybrid modes, with a decoded SNR on speech-band tones
// at least as good (see media README and BenchmarkEncoderSettings).
var DefaultEncoderConfig = EncoderConfig{Application: AppAudio, Complexity: 5, Bitrate: 32000}

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

// DefaultResamplerQuality is what ResampleDefault means; chosen by
// BenchmarkResampler (cost and held-back latency per quality, media README).
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
	return newSoxrResampler(dst, inRate, q)
}

// supportedRate reports the TTS output rates we accept (pcm_8000 .. pcm_24000).
func supportedRate(r int) bool {
	switch r {
	case 8000, 16000, 22050, 24000:
		return true
	}
	return false
}
