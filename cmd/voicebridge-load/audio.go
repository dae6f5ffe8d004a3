package main

import (
	"math"
	"sync"

	"github.com/hraban/opus"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// trackRTP is what audioCheck reads: *webrtc.TrackRemote satisfies it.
type trackRTP interface {
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
}

// audioCheck decodes a sampled call's Opus and measures the level of its
// speech-sized and silence-sized frames, to show the audio is real speech
// where speech should be and digital silence elsewhere.
type audioCheck struct {
	mu            sync.Mutex
	SpeechFrames  int
	SpeechLoud    int     // speech frames above loudDBFS
	SpeechSumSq   float64 // Σ mean square of speech frames (for mean level)
	SilenceFrames int
	SilenceMaxDB  float64 // loudest silence frame, dBFS, but for the first after speech (the codec's tail)
	DecodeErrors  int
	silence       silenceSize
	prevSpeech    bool
}

// loudDBFS: a speech frame louder than this has energy.
const loudDBFS = -50

// run decodes until src fails (the peer connection closed).
func (a *audioCheck) run(src trackRTP) {
	dec, err := opus.NewDecoder(opusClock, 1)
	if err != nil {
		a.mu.Lock()
		a.DecodeErrors++
		a.mu.Unlock()
		return
	}
	pcm := make([]int16, 5760)
	a.mu.Lock()
	a.SilenceMaxDB = math.Inf(-1)
	a.mu.Unlock()
	for {
		p, _, err := src.ReadRTP()
		if err != nil {
			return
		}
		n, err := dec.Decode(p.Payload, pcm)
		a.mu.Lock()
		if err != nil {
			a.DecodeErrors++
			a.mu.Unlock()
			continue
		}
		a.account(a.silence.isSpeech(p.Marker, len(p.Payload)), pcm[:n])
		a.mu.Unlock()
	}
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
	if len(pcm) == 0 {
		return 0
	}
	var s float64
	for _, v := range pcm {
		f := float64(v) / 32768
		s += f * f
	}
	return s / float64(len(pcm))
}

// dbfs converts a mean square to dBFS (−Inf for digital silence).
func dbfs(meanSq float64) float64 {
	if meanSq <= 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(meanSq)
}
