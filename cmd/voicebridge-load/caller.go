package main

import (
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
	"github.com/zaf/g711"
)

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
