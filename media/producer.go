package media

// The producer side of a Stream, in three files that follow a chunk of PCM:
//
//   - write.go: Write → stage/carry → feed (libsoxr) → sink (pending 48 kHz
//     output) → push (queue of 20 ms frames);
//   - segment.go: resampler segments (a rate change overlap-adds two);
//   - generation.go: the end of a generation (EndGeneration) and the drain
//     the pacer runs when the queue is about to run dry.
//
// This file holds the state they share.

// Feed sizes for the resampler. zaf/resample copies through C memory on
// every Write, so small TTS chunks are gathered to at least minFeedMs; big
// ones are cut at maxFeedMs so that the pending output stays bounded.
const (
	minFeedMs = 20
	maxFeedMs = 100
	// overlapMs is the overlap-add window at a mid-stream rate change: the
	// old segment is flushed with this much zero input appended (its
	// filter's ring-down) and the new one is started with this much zero
	// input prepended (its pre-ringing), and the two are summed, so that the
	// resampled signal is continuous across the change. 20 ms is the
	// shortest duration that is a whole number of samples at every rate. A
	// drain feeds zeros in blocks of this size too.
	overlapMs = 20
)

// producer is the Write side of a Stream: odd-byte carry, input staging,
// the resampler segment and its pending 48 kHz output. Guarded by
// Stream.prodMu.
type producer struct {
	s       *Stream
	epoch   uint64 // queue epoch this state belongs to
	rate    int    // input rate of res
	res     Resampler
	stage   []byte // whole input samples waiting to be fed (< minFeed)
	carry   byte   // first byte of a sample split across Writes
	hasOdd  bool
	genOpen bool // audio was written since the last EndGeneration
	genOut  int  // 48 kHz samples pushed in this generation
	// padded is how many of the last genOut samples are a drain's padding
	// (ring-down after the last real sample); 0 once real audio follows.
	padded int
	zeros  []byte

	// After a drain (see drain, resume): provFrames frames at the queue's
	// tail hold the end of the real audio padded with ring-down; they are
	// pending[:provLen] too, taken back if more audio comes before the
	// pacer reaches them. shift is the output of the zeros fed to libsoxr.
	drained    bool
	provFrames int
	provLen    int
	provPart   int // samples of the first provisional frame pushed before the drain
	shift      int

	// pending is the resampler output not yet pushed to the queue. The
	// current segment's output sample k lands at pending[segBase+k]: added
	// to what is there (overlap after a rate change) or appended; dropped
	// when segBase+k < 0 (already pushed, or zeros a drain fed).
	pending []int16
	segBase int
	segIn   int // input samples fed in this segment (zeros included)
	segOut  int // output samples produced in this segment
	realIn  int // segIn after the last real (not drain-fed) input sample
}

func (p *producer) init(s *Stream) {
	p.s = s
	p.epoch = s.q.currentEpoch()
	p.stage = make([]byte, 0, 24000*minFeedMs/1000*2)
	p.zeros = make([]byte, 24000*overlapMs/1000*2)
	p.pending = make([]int16, 0, s.rate)
}

// outIndex is the segment output index (at the codec's clock rate) of
// segment input sample in.
func (p *producer) outIndex(in int) int {
	return (in*p.s.rate + p.rate/2) / p.rate
}

// holding reports whether audio of the generation is written but not yet
// in whole frames: staged input, output libsoxr holds back, or a partial
// frame. The pacer drains it when the queue is about to run dry.
func (p *producer) holding() bool {
	return !p.drained && (len(p.stage) > 0 || p.genOut%p.s.fs != 0 ||
		(p.res != nil && p.segBase+p.outIndex(p.realIn) > 0))
}

// publish tells the pacer whether there is audio to drain.
func (p *producer) publish() { p.s.holding.Store(p.holding()) }

// drop forgets everything not yet queued: after Clear, ctx cancellation or
// Close. The resampler is freed; the next Write makes a new one. The
// queue's unfinished frame goes too, so that the next generation starts on
// a frame boundary.
func (p *producer) drop() {
	p.s.q.dropPartial(p.epoch)
	if p.res != nil {
		_ = p.res.Close()
		p.res = nil
	}
	p.stage = p.stage[:0]
	p.hasOdd = false
	p.genOpen = false
	p.genOut, p.padded = 0, 0
	p.pending = p.pending[:0]
	p.segBase, p.segIn, p.segOut, p.realIn = 0, 0, 0, 0
	p.drained, p.provFrames, p.provLen, p.provPart, p.shift = false, 0, 0, 0, 0
	p.s.holding.Store(false)
}

func (p *producer) close() { p.drop() }

// sync drops state left over from before a Clear. It reports whether a
// generation was in progress when the Clear ran.
func (p *producer) sync() bool {
	e := p.s.q.currentEpoch()
	if e == p.epoch {
		return false
	}
	was := p.genOpen
	p.drop()
	p.epoch = e
	return was
}
