package main

import (
	"testing"
	"time"
)

// feed is a synthetic sender: packet k of a stream at t0 + k·20 ms + jitter.
type feed struct {
	c   *callStats
	t0  int64
	seq uint16
	ts  uint32
}

// frameTicks is an Opus frame's timestamp step, at 48 kHz.
const frameTicks = 960

func newFeed(seq uint16, ts uint32) *feed {
	w := &window{}
	w.start.Store(1) // everything counts
	return &feed{c: newCallStats(w, 48000), t0: 1_000_000_000_000, seq: seq, ts: ts}
}

// send emits frame k (its grid time) with the given lateness and payload size.
func (f *feed) send(k int, late time.Duration, size int, marker bool) {
	t := f.t0 + int64(k)*int64(frameDuration) + int64(late)
	f.c.OnPacket(t, rtpHeader{Seq: f.seq + uint16(k), Timestamp: f.ts + uint32(k*frameTicks), Marker: marker, PayloadLen: size})
}

func TestPacingPerfectStream(t *testing.T) {
	f := newFeed(65500, 0xffffff00) // both wrap during the stream
	for k := range 200 {
		f.send(k, 0, 13, false)
	}
	c := f.c
	if c.Packets != 200 || c.Pacing.Count != 199 || c.Pacing.Max != 0 || c.Gaps != 0 || c.Late != 0 || c.Skips != 0 || c.Reorder != 0 {
		t.Errorf("perfect stream: %+v, pacing count %d max %v", c, c.Pacing.Count, c.Pacing.Max)
	}
}

func TestPacingOneLatePacket(t *testing.T) {
	f := newFeed(1, 0)
	for k := range 10 {
		late := time.Duration(0)
		if k == 5 {
			late = 3 * time.Millisecond
		}
		f.send(k, late, 13, false)
	}
	h := f.c.Pacing
	// Inter-arrivals 4→5 is 23 ms and 5→6 is 17 ms: two errors of 3 ms.
	if h.Count != 9 || h.Max != 3*time.Millisecond || h.Buckets[300] != 2 || h.Buckets[0] != 7 {
		t.Errorf("count %d max %v buckets[0] %d buckets[300] %d", h.Count, h.Max, h.Buckets[0], h.Buckets[300])
	}
	if f.c.Late != 0 {
		t.Errorf("3 ms is not late: %d", f.c.Late)
	}
}

func TestPacingGapsSkipsLateReorder(t *testing.T) {
	f := newFeed(100, 5000)
	for k := range 5 {
		f.send(k, 0, 13, false)
	}
	// Frames 5 and 6 lost: a sequence gap of 2, no pacing sample across it.
	f.send(7, 0, 13, false)
	// The sender skips frame 8's timestamp without a sequence gap.
	f.c.OnPacket(f.t0+9*int64(frameDuration), rtpHeader{Seq: 108, Timestamp: 5000 + 9*frameTicks, PayloadLen: 13})
	// A frame 30 ms behind its grid.
	f.c.OnPacket(f.t0+10*int64(frameDuration)+int64(30*time.Millisecond), rtpHeader{Seq: 109, Timestamp: 5000 + 10*frameTicks, PayloadLen: 13})
	// A duplicate of an old packet.
	f.send(3, 0, 13, false)
	c := f.c
	if c.Gaps != 2 {
		t.Errorf("gaps %d, want 2", c.Gaps)
	}
	if c.Skips != 1 {
		t.Errorf("skips %d, want 1", c.Skips)
	}
	if c.Late != 1 {
		t.Errorf("late %d, want 1", c.Late)
	}
	if c.Reorder != 1 {
		t.Errorf("reorder %d, want 1", c.Reorder)
	}
	// Pacing samples: 4 in the first run, none across the gap, 8→9 (exact
	// with the skip accounted for), 9→10 (30 ms error).
	if c.Pacing.Count != 6 || c.Pacing.Max != 30*time.Millisecond {
		t.Errorf("pacing count %d max %v", c.Pacing.Count, c.Pacing.Max)
	}
}

func TestPacingWindow(t *testing.T) {
	f := newFeed(0, 0)
	f.c.win.start.Store(f.t0 + 10*int64(frameDuration))
	f.c.win.end.Store(f.t0 + 19*int64(frameDuration))
	for k := range 30 {
		f.send(k, 0, 13, false)
	}
	if f.c.Packets != 10 || f.c.Pacing.Count != 10 {
		t.Errorf("in window: packets %d pacing %d, want 10 and 10", f.c.Packets, f.c.Pacing.Count)
	}
}

func TestSpeechDetection(t *testing.T) {
	f := newFeed(0, 0)
	// Idle: silence frames teach the size (one smaller outlier is not
	// expected from the bridge, but the smallest wins).
	for k := range 12 {
		f.send(k, 0, 13, false)
	}
	if f.c.silence.size != 13 || f.c.Speech != 0 || f.c.speechStart.Load() != 0 {
		t.Fatalf("silence len %d, speech %d", f.c.silence.size, f.c.Speech)
	}
	f.send(12, 0, 90, true) // talkspurt
	for k := 13; k < 20; k++ {
		f.send(k, 0, 70, false)
	}
	f.send(20, 0, 13, false)
	if f.c.Speech != 8 {
		t.Errorf("speech %d, want 8", f.c.Speech)
	}
	if got := f.c.speechStart.Load(); got != f.t0+12*int64(frameDuration) {
		t.Errorf("speech started at %d", got-f.t0)
	}
	if got := f.c.lastSpeech.Load(); got != f.t0+19*int64(frameDuration) {
		t.Errorf("last speech at %d", got-f.t0)
	}
}

func TestStreamResetReanchors(t *testing.T) {
	f := newFeed(10, 0)
	for k := range 5 {
		f.send(k, 0, 13, false)
	}
	// The sender restarts with an unrelated sequence and timestamp.
	f.c.OnPacket(f.t0+5*int64(frameDuration), rtpHeader{Seq: 30000, Timestamp: 123456, PayloadLen: 13})
	f.c.OnPacket(f.t0+6*int64(frameDuration), rtpHeader{Seq: 30001, Timestamp: 123456 + frameTicks, PayloadLen: 13})
	if f.c.Gaps != 0 || f.c.Late != 0 || f.c.Pacing.Max != 0 {
		t.Errorf("reset: gaps %d late %d max %v", f.c.Gaps, f.c.Late, f.c.Pacing.Max)
	}
}

func TestTalkspurtTimeIncludesShortPauses(t *testing.T) {
	f := newFeed(0, 0)
	k := 0
	send := func(n, size int, marker bool) {
		for i := range n {
			f.send(k, 0, size, marker && i == 0)
			k++
		}
	}
	send(5, 13, false)  // idle: learn the silence size
	send(5, 80, true)   // talkspurt
	send(10, 13, false) // a 200 ms pause inside it
	send(5, 80, false)
	send(30, 13, false) // the end: 600 ms of silence
	send(3, 80, true)   // the next talkspurt
	send(2, 13, false)
	// 13 speech-sized frames, and the short pause inside the first talkspurt.
	if f.c.Speech != 23 {
		t.Errorf("talkspurt frames %d, want 23", f.c.Speech)
	}
	if got := f.c.speechStart.Load(); got != f.t0+int64(k-5)*int64(frameDuration) {
		t.Errorf("the last talkspurt started at frame %d", (got-f.t0)/int64(frameDuration))
	}
}

// TestPacingG711Clock: at 8 kHz a frame is 160 ticks; the same checks hold.
func TestPacingG711Clock(t *testing.T) {
	w := &window{}
	w.start.Store(1)
	c := newCallStats(w, 8000)
	t0 := int64(1_000_000_000_000)
	send := func(k int, seq uint16, late time.Duration) {
		c.OnPacket(t0+int64(k)*int64(frameDuration)+int64(late), rtpHeader{Seq: seq, Timestamp: uint32(k * 160), PayloadLen: 170})
	}
	for k := range 10 {
		send(k, uint16(k), 0)
	}
	send(10, 10, 2*time.Millisecond)
	send(12, 11, 0) // frame 11 skipped: the timestamp jumps 320, no sequence gap
	send(14, 13, 0) // one packet lost
	send(15, 14, 25*time.Millisecond)
	if c.Packets != 14 || c.Skips != 1 || c.Gaps != 1 || c.Late != 1 || c.Pacing.Max != 25*time.Millisecond {
		t.Errorf("packets %d skips %d gaps %d late %d max %v", c.Packets, c.Skips, c.Gaps, c.Late, c.Pacing.Max)
	}
	if h := c.Pacing; h.Buckets[0] != 9 || h.Buckets[200] != 2 {
		t.Errorf("perfect %d, 2 ms %d", h.Buckets[0], h.Buckets[200])
	}
}
