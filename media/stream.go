package media

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// PacketWriter receives the stream's RTP packets, one per 20 ms, from the
// pacer goroutine. *webrtc.TrackLocalStaticRTP satisfies it: it rewrites SSRC
// and payload type per binding and keeps sequence numbers, timestamps and the
// marker bit. The packet and its payload are reused after WriteRTP returns
// (TrackLocalStaticRTP copies the header and consumes the payload
// synchronously; pion's NACK responder copies it into its own buffer).
type PacketWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// PacketWriterFunc adapts a function to PacketWriter.
type PacketWriterFunc func(p *rtp.Packet) error

// WriteRTP calls f(p).
func (f PacketWriterFunc) WriteRTP(p *rtp.Packet) error { return f(p) }

// EventKind tells playout events apart.
type EventKind int

// Playout events.
const (
	// EventSpeaking: the first frame of a generation's speech went on the
	// wire (once per generation, after idle, after a previous generation's
	// last frame, or after Clear). When the producer falls behind inside a
	// generation (underrun), silence frames fill the gap and the first
	// speech packet after them carries the marker bit, but no second
	// EventSpeaking is sent.
	EventSpeaking EventKind = iota + 1
	// EventDone: the last frame of a generation went on the wire. Every
	// EndGeneration that returned nil gets exactly one EventSpeaking and one
	// EventDone, in order, after the previous generation's EventDone; an
	// empty generation (no audio since the last EndGeneration) gets both on
	// the same frame, the frame after the previous generation's last one
	// (or the next frame when idle). Never sent for a generation abandoned
	// by Clear.
	EventDone
	// EventMark: a mark (Stream.Mark) was reached: every frame queued
	// before it went on the wire (Cleared false), or a Clear dropped audio
	// queued before it (Cleared true, at the first frame after the Clear).
	// Every Mark that returned nil gets exactly one EventMark, in the order
	// of the Mark calls, and in order with EventDone: a mark after a
	// generation's end comes after its EventDone, on the same frame.
	EventMark
)

func (k EventKind) String() string {
	switch k {
	case EventSpeaking:
		return "speaking"
	case EventDone:
		return "done"
	case EventMark:
		return "mark"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a playout event. At is the pacer's clock reading when the frame
// was handed to the PacketWriter.
type Event struct {
	Kind EventKind
	At   time.Time
	// Mark and Cleared: EventMark's name and whether a Clear dropped the
	// audio before it.
	Mark    string
	Cleared bool
}

// StreamConfig configures a Stream. Only Writer is required.
type StreamConfig struct {
	// Writer receives the packets. Required.
	Writer PacketWriter
	// Codec is what the stream sends; the zero value is Opus. With PCMU or
	// PCMA everything after the resampler runs at 8 kHz: 160-sample
	// frames, RTP timestamps +160 per frame, a precomputed G.711 silence
	// payload, pcm_8000 input passed through without a resampler. Pacing,
	// pre-roll, drain, Clear, marks and events are the same.
	Codec Codec
	// DTMFPayloadType is the payload type put on RFC 4733
	// telephone-event packets (SendDTMF); the PacketWriter maps it to the
	// negotiated one. If zero, 101. It must differ from the codec's.
	DTMFPayloadType uint8
	// Encoder configures libopus; the zero value is DefaultEncoderConfig.
	// Ignored for G.711.
	Encoder EncoderConfig
	// Resampler selects libsoxr's quality; if zero, DefaultResamplerQuality.
	Resampler ResamplerQuality
	// QueueDuration bounds the audio queued between Write and the wire,
	// rounded up to whole 20 ms frames. If zero, 3s. Write blocks when full.
	QueueDuration time.Duration
	// MaxCatchUp is how many missed frames the pacer sends at once after a
	// scheduling hiccup; beyond that it skips ahead on the wall-clock grid.
	// If zero, 3. Negative means never catch up (always skip).
	MaxCatchUp int
	// PreRoll is how much audio must be queued, in whole 20 ms frames
	// rounded up, before a talkspurt starts, so that its first frames play
	// without a gap while the TTS and libsoxr (which releases output in
	// blocks) catch up. A talkspurt also starts when the generation has
	// ended (all of it is queued) or PreRollWait after audio first waited.
	// If zero, DefaultPreRoll; negative: start on the first whole frame
	// (no pre-roll, no lead; drains still happen).
	PreRoll time.Duration
	// PreRollWait bounds the pre-roll: once audio has waited this long, the
	// pacer drains what the producer holds (see EndGeneration) and starts
	// the talkspurt. If zero, DefaultPreRollWait. Negative is an error.
	PreRollWait time.Duration
	// OnEvent is called from the pacer goroutine after the frame concerned
	// was written. It must not block. Nil: events are dropped.
	OnEvent func(Event)
	// OnFrame is called from the pacer goroutine for every frame with its
	// pacing error (send time minus its deadline) and whether it was late (a
	// catch-up frame, at least one frame period behind). It must be cheap,
	// non-blocking and allocation-free. Nil ok.
	OnFrame func(pacingError time.Duration, late bool)
	// OnClose is called once, by the first Close, with the final Stats
	// (after Run has returned). Nil ok.
	OnClose func(Stats)
	// Logger receives rare events (write and encode errors, throttled;
	// drain errors). If nil, discard.
	Logger *slog.Logger
}

// Defaults for zero StreamConfig fields.
const (
	DefaultQueueDuration = 3 * time.Second
	DefaultMaxCatchUp    = 3
	// DefaultPreRoll: see the package README for the measurement.
	DefaultPreRoll = 60 * time.Millisecond
	// DefaultPreRollWait: see the package README for the measurement.
	DefaultPreRollWait = 200 * time.Millisecond
)

// Stats is a snapshot of a Stream's counters.
type Stats struct {
	FramesSent    uint64 // packets handed to the PacketWriter
	SpeechFrames  uint64 // packets encoded from queued audio
	SilenceFrames uint64 // precomputed silence packets
	LateFrames    uint64 // frames sent one frame period or more behind their deadline (catch-up)
	SkippedFrames uint64 // grid slots skipped after a hiccup longer than MaxCatchUp
	Underruns     uint64 // silence frames between two speech frames of one generation (producer too slow)
	Generations   uint64 // EventDone count
	Talkspurts    uint64 // packets sent with the marker bit
	Clears        uint64 // Clear calls
	WriteErrors   uint64 // PacketWriter errors (the frame is counted as sent)
	EncodeErrors  uint64 // encoder errors (silence sent instead)
	Drains        uint64 // times the pacer drained the producer: the queue ran dry inside a talkspurt
	Resumes       uint64 // drains whose padding was taken back because more audio came in time (seamless)
	PreRollWaits  uint64 // talkspurts started because PreRollWait ran out, not on PreRoll or a generation end
	DTMFDigits    uint64 // DTMF digits sent (their end packets included)
	DTMFPackets   uint64 // telephone-event packets sent (counted in FramesSent too)
	Marks         uint64 // EventMark count (reached or cleared)
	QueuedFrames  int    // whole frames waiting now
}

type counters struct {
	framesSent, speechFrames, silenceFrames, lateFrames, skippedFrames  atomic.Uint64
	underruns, generations, talkspurts, clears, writeErrors, encodeErrs atomic.Uint64
	drains, resumes, preRollWaits, marks, dtmfDigits, dtmfPackets       atomic.Uint64
}

// Stream turns PCM16 chunks into a paced Opus/RTP stream. Write and
// EndGeneration are called from one producer goroutine, Run from the pacer
// goroutine the caller owns, Clear and Stats from any goroutine.
type Stream struct {
	cfg          StreamConfig
	log          *slog.Logger
	clock        Clock
	newEncoder   EncoderFactory
	newResampler ResamplerFactory
	q            *frameQueue
	c            counters
	rate         int // the codec's clock rate: samples per second after the resampler
	fs           int // samples per 20 ms frame at rate

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	started   atomic.Bool
	runDone   chan struct{} // closed when Run returns
	scheduler *Scheduler    // WithScheduler; nil: the process's default
	sched     schedState    // place in the scheduler while Run runs

	prodMu sync.Mutex // serializes Write/EndGeneration and the pacer's drain; guards prod
	prod   producer
	// holding: the producer has audio not yet in whole frames (see
	// producer.holding); read by the pacer without prodMu.
	holding atomic.Bool

	// Pacer state: only the Run goroutine touches these.
	enc      Encoder
	silence  []byte // precomputed Opus silence frame
	frame    []int16
	zeros    []int16
	payload  []byte
	pkt      rtp.Packet
	ts0      uint32
	seq      uint16
	lastSpch bool // previous packet was speech
	sentAny  bool // a packet was sent
	genOpen  bool // EventSpeaking sent, EventDone not yet
	epoch    uint64
	preRoll  int       // frames needed to start a talkspurt
	waitFrom time.Time // when audio started waiting for the pre-roll; zero if none
	gap      uint64    // silence frames since the last speech frame of the open generation

	lookahead int // enc.Lookahead(), read by the producer

	dtmf dtmfTx // digits to send (dtmf_tx.go)
}

// NewStream validates cfg, builds the encoder and precomputes the silence
// frame. The caller runs Run in its own goroutine and calls Close at the end.
func NewStream(cfg StreamConfig, opts ...Option) (*Stream, error) {
	if cfg.Writer == nil {
		return nil, fmt.Errorf("%w: Writer is required", ErrInvalidConfig)
	}
	if !cfg.Codec.valid() {
		return nil, fmt.Errorf("%w: codec %d", ErrInvalidConfig, int(cfg.Codec))
	}
	if cfg.DTMFPayloadType == 0 {
		cfg.DTMFPayloadType = DefaultDTMFPayloadType
	}
	if cfg.DTMFPayloadType > 127 || cfg.DTMFPayloadType == cfg.Codec.PayloadType() {
		return nil, fmt.Errorf("%w: DTMF payload type %d", ErrInvalidConfig, cfg.DTMFPayloadType)
	}
	if err := cfg.Encoder.Validate(); err != nil {
		return nil, err
	}
	if cfg.Resampler < ResampleDefault || cfg.Resampler > ResampleVeryHigh {
		return nil, fmt.Errorf("%w: resampler quality %d", ErrInvalidConfig, int(cfg.Resampler))
	}
	if cfg.PreRollWait < 0 {
		return nil, fmt.Errorf("%w: negative PreRollWait", ErrInvalidConfig)
	}
	if cfg.PreRollWait == 0 {
		cfg.PreRollWait = DefaultPreRollWait
	}
	if cfg.PreRoll == 0 {
		cfg.PreRoll = DefaultPreRoll
	}
	if cfg.QueueDuration < 0 {
		return nil, fmt.Errorf("%w: negative QueueDuration", ErrInvalidConfig)
	}
	if cfg.QueueDuration == 0 {
		cfg.QueueDuration = DefaultQueueDuration
	}
	switch {
	case cfg.MaxCatchUp == 0:
		cfg.MaxCatchUp = DefaultMaxCatchUp
	case cfg.MaxCatchUp < 0:
		cfg.MaxCatchUp = 0
	}
	if cfg.Resampler == ResampleDefault {
		cfg.Resampler = DefaultResamplerQuality
	}
	cfg.Encoder = cfg.Encoder.withDefaults()
	s := &Stream{
		cfg:          cfg,
		log:          cfg.Logger,
		clock:        realClock{},
		newEncoder:   NewEncoder,
		newResampler: NewResamplerTo,
		rate:         cfg.Codec.ClockRate(),
		fs:           cfg.Codec.FrameSamples(),
		closing:      make(chan struct{}),
		runDone:      make(chan struct{}),
		frame:        make([]int16, cfg.Codec.FrameSamples()),
		zeros:        make([]int16, cfg.Codec.FrameSamples()),
		payload:      make([]byte, maxOpusPacket+1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	frames := int((cfg.QueueDuration + FrameDuration - 1) / FrameDuration)
	s.q = newFrameQueue(frames, s.fs)
	s.preRoll = max(1, min(frames, int((cfg.PreRoll+FrameDuration-1)/FrameDuration)))
	if cfg.Codec.IsG711() {
		s.enc, s.silence = g711Encoder{cfg.Codec}, G711Silence(cfg.Codec)
	} else {
		enc, err := s.newEncoder(cfg.Encoder)
		if err != nil {
			return nil, err
		}
		s.silence, err = silenceFrame(s.newEncoder, cfg.Encoder)
		if err != nil {
			_ = enc.Close()
			return nil, err
		}
		s.enc = enc
	}
	s.lookahead = s.enc.Lookahead()
	s.prod.init(s)
	// RFC 3550 §5.1: random initial sequence number and timestamp.
	s.seq = uint16(rand.Uint32())
	s.ts0 = rand.Uint32()
	s.pkt.Header = rtp.Header{Version: 2, PayloadType: cfg.Codec.PayloadType(), SSRC: rand.Uint32()}
	return s, nil
}

// silenceFrame encodes digital silence with a fresh encoder of the stream's
// settings until its output is steady, and returns a copy of that packet:
// sending it costs no encoder run, and it decodes to zeros in the same mode
// as the speech around it.
func silenceFrame(newEnc EncoderFactory, cfg EncoderConfig) ([]byte, error) {
	enc, err := newEnc(cfg)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	zeros := make([]int16, FrameSamples)
	out := make([]byte, maxOpusPacket+1)
	var n int
	for range 10 {
		if n, err = enc.Encode(zeros, out); err != nil {
			return nil, fmt.Errorf("media: encode silence: %w", err)
		}
	}
	return append([]byte(nil), out[:n]...), nil
}

// Clear drops every queued frame and the producer's pending audio: the next
// frame on the wire is silence (a frame already being written may finish),
// and the next talkspurt starts with a fresh pre-roll.
// A Write or EndGeneration in progress returns ErrCleared. No EventDone is
// sent for the abandoned generation. Safe from any goroutine.
func (s *Stream) Clear() {
	s.q.clear()
	s.c.clears.Add(1)
}

// Stats returns the counters. Safe from any goroutine.
func (s *Stream) Stats() Stats {
	return Stats{
		FramesSent:    s.c.framesSent.Load(),
		SpeechFrames:  s.c.speechFrames.Load(),
		SilenceFrames: s.c.silenceFrames.Load(),
		LateFrames:    s.c.lateFrames.Load(),
		SkippedFrames: s.c.skippedFrames.Load(),
		Underruns:     s.c.underruns.Load(),
		Generations:   s.c.generations.Load(),
		Talkspurts:    s.c.talkspurts.Load(),
		Clears:        s.c.clears.Load(),
		WriteErrors:   s.c.writeErrors.Load(),
		EncodeErrors:  s.c.encodeErrs.Load(),
		Drains:        s.c.drains.Load(),
		Resumes:       s.c.resumes.Load(),
		PreRollWaits:  s.c.preRollWaits.Load(),
		Marks:         s.c.marks.Load(),
		DTMFDigits:    s.c.dtmfDigits.Load(),
		DTMFPackets:   s.c.dtmfPackets.Load(),
		QueuedFrames:  s.q.frames(),
	}
}

// Close stops Run if it is running and waits for it, fails pending and
// future Writes with ErrClosed and frees the codecs. Idempotent.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.q.close()
		if s.started.Load() {
			<-s.runDone
		}
		s.prodMu.Lock()
		s.prod.close()
		s.prodMu.Unlock()
		_ = s.enc.Close()
		if s.cfg.OnClose != nil {
			s.cfg.OnClose(s.Stats())
		}
	})
	return nil
}

var _ io.Writer = (*sink)(nil)
