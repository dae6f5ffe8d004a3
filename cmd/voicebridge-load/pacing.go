package main

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

const (
	frameDuration = 20 * time.Millisecond // the contract's frame
	// lateThreshold: a packet more than one frame behind its stream's own
	// grid (anchored on its earliest packet) is late.
	lateThreshold = frameDuration
	pacingWidth   = 10 * time.Microsecond // per-call pacing histogram: bucket
	pacingLimit   = 100 * time.Millisecond
	maxGap        = 3000 // a larger forward sequence jump is a stream reset, not loss
	// pauseFrames: fewer silence frames than this (500 ms) between speech
	// frames are a pause inside a talkspurt, not its end.
	pauseFrames = 25
	// silenceProbe: a call's first packets (sent while idle) teach the
	// receiver the size of the bridge's silence frame.
	silenceProbe = 5
)

// rtpHeader is what the receivers read of an SRTP packet: SRTP (RFC 3711
// §3.1) encrypts only the payload. PayloadLen includes the authentication
// tag (constant per session), so it still tells silence from speech.
type rtpHeader struct {
	Marker     bool
	Seq        uint16
	Timestamp  uint32
	PayloadLen int
}

var errNotRTP = errors.New("load: not an RTP packet")

// isRTP tells RTP from what else shares an ICE/DTLS/SRTP 5-tuple: the first
// byte (RFC 7983 §7), then the payload type (RFC 5761 §4: RTCP types
// 192..223 are payload types 64..95 with the marker bit).
func isRTP(b []byte) bool {
	if len(b) < 2 || b[0] < 128 || b[0] > 191 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95
}

// parseRTPHeader reads b's header into h (reused: no allocation).
func parseRTPHeader(h *rtp.Header, b []byte) (rtpHeader, error) {
	n, err := h.Unmarshal(b)
	if err != nil || h.Version != 2 {
		return rtpHeader{}, errors.Join(errNotRTP, err)
	}
	return rtpHeader{h.Marker, h.SequenceNumber, h.Timestamp, len(b) - n}, nil
}

// window is a run's measurement window in Unix ns (kernel receive time).
// Packets outside it still drive speech detection but are not counted.
// Zero end means open.
type window struct{ start, end atomic.Int64 }

func (w *window) contains(t int64) bool {
	s, e := w.start.Load(), w.end.Load()
	return s != 0 && t >= s && (e == 0 || t <= e)
}

// callStats is one call's receive-side accounting. OnPacket runs only on
// the socket's reading goroutine; what it shares is atomic.
type callStats struct {
	win   *window
	clock int64 // RTP clock: 48000 (Opus) or 8000 (G.711)

	started bool // the rest: owned by the reading goroutine
	lastT   int64
	lastSeq uint16
	lastTS  uint32
	extTS   int64 // unwrapped timestamp of the previous packet
	anchor  int64 // min over packets of t − extTS/clock
	silence silenceSize
	pause   int    // silence frames since the last speech frame (≤ pauseFrames)
	pauseIn uint64 // of those, in the window

	Pacing  *Histogram // |inter-arrival − timestamp spacing|, in window
	Packets uint64     // in window, and so are the counts below
	Speech  uint64     // talkspurt time in frames: speech frames and the pauses between them
	Gaps    uint64     // missing by sequence number
	Reorder uint64
	Skips   uint64 // frames skipped: timestamp jumped > 1 frame with no seq gap
	Late    uint64 // more than lateThreshold behind the grid

	// Shared with calibrate: the first and the newest speech packet's time
	// of the current talkspurt.
	speechStart, lastSpeech atomic.Int64
}

func newCallStats(w *window, clock int) *callStats {
	return &callStats{win: w, clock: int64(clock), Pacing: NewHistogram(pacingWidth, pacingLimit)}
}

// OnPacket accounts one RTP packet received at t (Unix ns, kernel time).
func (c *callStats) OnPacket(t int64, h rtpHeader) {
	in := c.win.contains(t)
	d := int16(h.Seq - c.lastSeq)
	switch {
	case !c.started || int(d) > maxGap: // the first packet, or a new stream
		c.started, c.anchor, c.extTS = true, t, 0
	case d <= 0: // duplicate or reordered: nothing about pacing
		if in {
			c.Reorder++
			c.Packets++
		}
		return
	default:
		dts := int64(int32(h.Timestamp - c.lastTS))
		c.extTS += dts
		rel := t - c.extTS*int64(time.Second)/c.clock
		c.anchor = min(c.anchor, rel)
		if !in {
			break
		}
		if d > 1 {
			c.Gaps += uint64(d - 1)
		} else {
			want := time.Duration(dts * int64(time.Second) / c.clock)
			c.Pacing.Add((time.Duration(t-c.lastT) - want).Abs())
			if ticks := c.clock / 50; dts > ticks {
				c.Skips += uint64(dts/ticks - 1)
			}
		}
		if time.Duration(rel-c.anchor) > lateThreshold {
			c.Late++
		}
	}
	if in {
		c.Packets++
	}
	c.lastT, c.lastSeq, c.lastTS = t, h.Seq, h.Timestamp
	c.speech(t, h, in)
}

// silenceSize learns the size of the bridge's silence frame: the smallest
// of a stream's first packets, sent while its call is idle. Until then, and
// for G.711 (whose silence is as large as speech), only a marker means
// speech.
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
	if !c.silence.isSpeech(h.Marker, h.PayloadLen) {
		if c.pause < pauseFrames {
			c.pause++
			if in {
				c.pauseIn++
			}
		}
		return
	}
	// A new talkspurt after a marker or a long pause: what came before was
	// silence; a pause inside speech is speech time.
	if h.Marker || c.pause >= pauseFrames || c.speechStart.Load() == 0 {
		c.pauseIn = 0
		c.speechStart.Store(t)
	}
	if in {
		c.Speech += 1 + c.pauseIn
	}
	c.pause, c.pauseIn = 0, 0
	c.lastSpeech.Store(t)
}
