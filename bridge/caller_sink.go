package bridge

import (
	"fmt"
	"sync"
)

// botAudioQueue is how many 20 ms frames of caller audio wait for a slow bot
// before the oldest is dropped: 1 s.
const botAudioQueue = 50

// listenRates are the values of the bot WebSocket's listen parameter.
var listenRates = map[string]int{"pcm_8000": 8000, "pcm_16000": 16000, "pcm_24000": 24000, "pcm_48000": 48000}

// parseListen returns the rate a bot asked for with ?listen= (0: none).
func parseListen(v string, has bool) (int, error) {
	if !has {
		return 0, nil
	}
	rate, ok := listenRates[v]
	if !ok {
		return 0, fmt.Errorf("%w: listen: must be pcm_8000, pcm_16000, pcm_24000 or pcm_48000", ErrInvalidField)
	}
	return rate, nil
}

// audioSink is one listening bot socket's queue of caller audio: a ring of
// botAudioQueue frames, written by the call's receive goroutine (push) and
// read by the socket's writer (pop). A full ring drops its oldest frame, so
// a slow bot loses old audio and never holds up the call. All storage is
// allocated once.
type audioSink struct {
	rate       int
	frameBytes int           // 20 ms of PCM16LE mono at rate
	ready      chan struct{} // cap 1: a frame was pushed

	mu sync.Mutex
	// The following fields are guarded by mu.
	ring     []byte  // botAudioQueue frames
	arrivals []int64 // unix nanoseconds of the packet that completed each frame; 0: concealed
	head, n  int
}

func newAudioSink(rate int) *audioSink {
	fb := rate / 50 * 2
	return &audioSink{
		rate:       rate,
		frameBytes: fb,
		ready:      make(chan struct{}, 1),
		ring:       make([]byte, botAudioQueue*fb),
		arrivals:   make([]int64, botAudioQueue),
	}
}

// push queues a copy of frame and reports whether the oldest frame was
// dropped to make room. Called by the receive goroutine; never blocks but
// for the ring's short lock.
func (s *audioSink) push(frame []byte, arrival int64) (dropped bool) {
	s.mu.Lock()
	if s.n == botAudioQueue {
		s.head = (s.head + 1) % botAudioQueue
		s.n--
		dropped = true
	}
	i := (s.head + s.n) % botAudioQueue
	copy(s.ring[i*s.frameBytes:(i+1)*s.frameBytes], frame)
	s.arrivals[i] = arrival
	s.n++
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return dropped
}

// pop copies the oldest frame into dst (frameBytes long) and returns its
// arrival; ok is false when the ring is empty. Called by the socket's
// writer.
func (s *audioSink) pop(dst []byte) (arrival int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return 0, false
	}
	copy(dst, s.ring[s.head*s.frameBytes:(s.head+1)*s.frameBytes])
	arrival = s.arrivals[s.head]
	s.head = (s.head + 1) % botAudioQueue
	s.n--
	return arrival, true
}
