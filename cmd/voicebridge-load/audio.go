package main

import (
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
	"github.com/zaf/g711"
)

// trackRTP is what audioCheck reads: *webrtc.TrackRemote satisfies it.
type trackRTP interface {
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
}

// audioCheck decodes a sampled call's audio (Opus with libopus, G.711 with
// zaf/g711) and measures the level of its speech and silence frames, to show
// the audio is real speech where speech should be and digital silence
// elsewhere. Opus frames are told apart by size, as the counting calls do;
// G.711's are all 160 bytes, so a G.711 frame is silence if it decodes to
// digital silence (|sample| ≤ 8, A-law's smallest step).
type audioCheck struct {
	codec         media.Codec
	mu            sync.Mutex
	SpeechFrames  int
	SpeechLoud    int     // speech frames above loudDBFS
	SpeechSumSq   float64 // Σ mean square of speech frames
	SilenceFrames int
	SilenceMaxDB  float64 // loudest silence frame but the first after speech (the codec's tail)
	DecodeErrors  int
	silence       silenceSize
	prevSpeech    bool
}

const loudDBFS = -50 // a speech frame louder than this has energy

// run decodes until src fails (the peer connection closed).
func (a *audioCheck) run(src trackRTP) {
	dec, err := opus.NewDecoder(48000, 1)
	a.mu.Lock()
	a.SilenceMaxDB = math.Inf(-1)
	a.DecodeErrors += boolInt(err != nil)
	a.mu.Unlock()
	pcm := make([]int16, 5760)
	for err == nil {
		p, _, err := src.ReadRTP()
		if err != nil {
			return
		}
		n, derr := min(len(p.Payload), len(pcm)), error(nil)
		switch a.codec {
		case media.CodecPCMU:
			for i, b := range p.Payload[:n] {
				pcm[i] = g711.DecodeUlawFrame(b)
			}
		case media.CodecPCMA:
			for i, b := range p.Payload[:n] {
				pcm[i] = g711.DecodeAlawFrame(b)
			}
		default:
			n, derr = dec.Decode(p.Payload, pcm)
		}
		a.mu.Lock()
		if derr != nil {
			a.DecodeErrors++
		} else {
			a.account(a.isSpeech(p, pcm[:n]), pcm[:n])
		}
		a.mu.Unlock()
	}
}

func (a *audioCheck) isSpeech(p *rtp.Packet, pcm []int16) bool {
	if !a.codec.IsG711() {
		return a.silence.isSpeech(p.Marker, len(p.Payload))
	}
	for _, v := range pcm {
		if v > 8 || v < -8 {
			return true
		}
	}
	return false
}

// account adds one decoded frame. Called with mu held.
func (a *audioCheck) account(speech bool, pcm []int16) {
	ms := meanSquare(pcm)
	db := dbfs(ms)
	prev := a.prevSpeech
	a.prevSpeech = speech
	if speech {
		a.SpeechFrames++
		a.SpeechSumSq += ms
		if db > loudDBFS {
			a.SpeechLoud++
		}
		return
	}
	a.SilenceFrames++
	if !prev {
		a.SilenceMaxDB = max(a.SilenceMaxDB, db)
	}
}

// meanSquare of samples normalized to [-1, 1).
func meanSquare(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		f := float64(v) / 32768
		s += f * f
	}
	return s / float64(max(1, len(pcm)))
}

// dbfs converts a mean square to dBFS (−Inf for digital silence).
func dbfs(meanSq float64) float64 {
	if meanSq <= 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(meanSq)
}

// callerAudio is what two-way calls say: one pre-encoded 20 ms frame of a
// 440 Hz tone per call every 20 ms, written by one goroutine for all calls,
// so that the generator stays cheap.
type callerAudio struct {
	frame []byte
	ticks uint32 // RTP timestamp step
	quit  chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	tracks []*webrtc.TrackLocalStaticRTP // guarded by mu
}

func startCallerAudio(c media.Codec) (*callerAudio, error) {
	n := c.FrameSamples()
	pcm, le := make([]int16, n), make([]byte, 0, 2*n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/float64(c.ClockRate())))
		le = binary.LittleEndian.AppendUint16(le, uint16(pcm[i]))
	}
	a := &callerAudio{ticks: uint32(n), quit: make(chan struct{}), done: make(chan struct{})}
	switch c {
	case media.CodecPCMU:
		a.frame = g711.EncodeUlaw(le)
	case media.CodecPCMA:
		a.frame = g711.EncodeAlaw(le)
	default:
		enc, err := opus.NewEncoder(48000, 1, opus.AppVoIP)
		if err != nil {
			return nil, err
		}
		a.frame = make([]byte, 1500)
		k, err := enc.Encode(pcm, a.frame)
		if err != nil {
			return nil, err
		}
		a.frame = a.frame[:k]
	}
	go a.run()
	return a, nil
}

func (a *callerAudio) add(t *webrtc.TrackLocalStaticRTP) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tracks = append(a.tracks, t)
}

// run writes a frame to every track per tick; the list is copied so that
// no lock is held while writing.
func (a *callerAudio) run() {
	defer close(a.done)
	tick := time.NewTicker(frameDuration)
	defer tick.Stop()
	var tracks []*webrtc.TrackLocalStaticRTP
	p := rtp.Packet{Header: rtp.Header{Version: 2}, Payload: a.frame}
	for n := uint32(0); ; n++ {
		select {
		case <-a.quit:
			return
		case <-tick.C:
		}
		a.mu.Lock()
		tracks = append(tracks[:0], a.tracks...)
		a.mu.Unlock()
		p.SequenceNumber, p.Timestamp, p.Marker = uint16(n), n*a.ticks, n == 0
		for _, t := range tracks {
			_ = t.WriteRTP(&p) // a closed call's track writes nowhere
		}
	}
}

func (a *callerAudio) stop() {
	close(a.quit)
	<-a.done
}
