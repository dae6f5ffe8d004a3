package main

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	opusClock     = 48000                 // RTP clock of Opus, RFC 7587 §4.1
	frameDuration = 20 * time.Millisecond // the contract's frame
	frameTicks    = opusClock / 50        // 960
	// lateThreshold: a packet whose arrival is more than one frame behind
	// the stream's own grid (anchored on its earliest packet) is late.
	lateThreshold = frameDuration
	// pacingLimit and pacingWidth size the per-call pacing histogram.
	pacingWidth = 10 * time.Microsecond
	pacingLimit = 100 * time.Millisecond
	// maxGap: a forward sequence jump larger than this is a stream reset,
	// not loss.
	maxGap = 3000
	// pauseFrames: silence-sized frames between speech frames shorter than
	// this (500 ms) are a pause inside a talkspurt (the codec sends tiny
	// frames for digital silence inside speech), not the end of it.
	pauseFrames = 25
	// silenceProbe: how many of a call's first packets (sent while it is
	// idle) teach the receiver the size of the bridge's silence frame.
	silenceProbe = 5
)

// window is a run's measurement window in Unix nanoseconds (kernel receive
// time). Packets outside it still drive speech detection but are not
// counted. Zero end means open.
type window struct {
	start, end atomic.Int64
}

func (w *window) contains(t int64) bool {
	s, e := w.start.Load(), w.end.Load()
	return s != 0 && t >= s && (e == 0 || t <= e)
}

// callStats is one call's receive-side accounting. OnPacket is called only
// by the goroutine that reads the call's socket; the speech fields it shares
// with the driver are atomics or behind mu.
type callStats struct {
	win *window

	// Owned by the reading goroutine.
	started bool
	lastT   int64  // kernel receive time of the previous packet, ns
	lastSeq uint16 // previous sequence number
	extTS   int64  // unwrapped RTP timestamp of the previous packet
	lastTS  uint32
	anchor  int64 // min over packets of t − extTS·1e9/48000
	silence silenceSize

	Pacing      *Histogram // |inter-arrival − RTP-timestamp spacing|, in window
	Packets     uint64     // in window
	Speech      uint64     // talkspurt time in window, in frames: speech-sized packets and the pauses between them
	SpeechSized uint64     // speech-sized packets in window
	pause       int        // silence-sized packets since the last speech packet (up to pauseFrames)
	pauseIn     uint64     // of those, in the window
	Gaps        uint64     // packets missing by sequence number, in window
	Reorder     uint64     // packets older than their predecessor, in window
	Skips       uint64     // frames skipped: timestamp jumped > 960 with no seq gap
	Late        uint64     // packets more than lateThreshold behind the grid
	Markers     uint64     // talkspurts begun (marker bit), in window
	Unparsed    uint64

	// Shared with the driver.
	lastSpeech atomic.Int64 // receive time of the newest speech packet
	firstAudio latencies    // text sent → first speech packet
	toSilence  latencies    // clear sent → first silence packet
}

// latencies measures from an armed instant to the next packet of a kind.
// The driver arms and takes; the reading goroutine hits.
type latencies struct {
	from atomic.Int64 // when non-zero: armed at this Unix ns time
	mu   sync.Mutex
	got  []time.Duration // guarded by mu
}

// arm starts a measurement from at (Unix ns), replacing any armed one.
func (l *latencies) arm(at int64) { l.from.Store(at) }

// hit records t − from if armed at or before t, and disarms.
func (l *latencies) hit(t int64) {
	if from := l.from.Load(); from != 0 && t >= from && l.from.CompareAndSwap(from, 0) {
		l.mu.Lock()
		l.got = append(l.got, time.Duration(t-from))
		l.mu.Unlock()
	}
}

// take returns and forgets what was measured.
func (l *latencies) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

func newCallStats(w *window) *callStats {
	return &callStats{win: w, Pacing: NewHistogram(pacingWidth, pacingLimit)}
}

// OnPacket accounts one RTP packet received at t (Unix ns, kernel time).
func (c *callStats) OnPacket(t int64, h rtpHeader) {
	in := c.win.contains(t)
	if !c.started {
		c.started = true
		c.lastT, c.lastSeq, c.lastTS = t, h.Seq, h.Timestamp
		c.anchor = t
		c.speech(t, h, in)
		if in {
			c.Packets++
		}
		return
	}
	d := int16(h.Seq - c.lastSeq)
	switch {
	case d <= 0:
		// Duplicate or reordered: it says nothing about pacing.
		if in {
			c.Reorder++
			c.Packets++
		}
		return
	case int(d) > maxGap:
		// A new stream (e.g. a restarted sender): re-anchor.
		c.started = false
		c.OnPacket(t, h)
		return
	}
	dts := int64(int32(h.Timestamp - c.lastTS))
	c.extTS += dts
	rel := t - c.extTS*int64(time.Second)/opusClock
	if rel < c.anchor {
		c.anchor = rel
	}
	if in {
		c.Packets++
		if d > 1 {
			c.Gaps += uint64(d - 1)
		} else {
			want := time.Duration(dts * int64(time.Second) / opusClock)
			got := time.Duration(t - c.lastT)
			c.Pacing.Add((got - want).Abs())
			if dts > frameTicks {
				c.Skips += uint64(dts/frameTicks - 1)
			}
		}
		if time.Duration(rel-c.anchor) > lateThreshold {
			c.Late++
		}
	}
	c.lastT, c.lastSeq, c.lastTS = t, h.Seq, h.Timestamp
	c.speech(t, h, in)
}

// silenceSize learns the payload size of the bridge's silence frame: the
// smallest of a stream's first packets, sent while its call is idle (the
// driver has not spoken yet). Until then, only a marker means speech.
type silenceSize struct{ n, size int }

func (s *silenceSize) isSpeech(marker bool, size int) bool {
	if s.n < silenceProbe && !marker {
		s.n++
		if s.size == 0 || size < s.size {
			s.size = size
		}
		return false
	}
	s.n = silenceProbe
	return marker || size > s.size
}

func (c *callStats) speech(t int64, h rtpHeader, in bool) {
	if in && h.Marker {
		c.Markers++
	}
	if !c.silence.isSpeech(h.Marker, h.PayloadLen) {
		c.toSilence.hit(t)
		if c.pause < pauseFrames {
			c.pause++
			if in {
				c.pauseIn++
			}
		}
		return
	}
	if in {
		c.SpeechSized++
		c.Speech++
		if h.Marker || c.pause >= pauseFrames {
			c.pauseIn = 0 // a new talkspurt: what came before was silence
		}
		c.Speech += c.pauseIn // a pause inside speech is speech time
	}
	c.pause, c.pauseIn = 0, 0
	c.lastSpeech.Store(t)
	c.firstAudio.hit(t)
}
