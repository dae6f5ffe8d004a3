//go:build cgo

package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"
)

// These tests listen to the stream as a receiver does: every packet, from
// the first, goes through one fresh libopus decoder, while the real pacer
// runs on the real clock and a producer goroutine delivers one tone per
// word the way TTS services do (as fast as possible, real time, 1.25× real
// time in 60 ms chunks, a tiny first message, munsit's end of generation
// 400 ms after the last audio). Assertions count packets and samples.

// wireRecorder is a PacketWriter that decodes every packet.
type wireRecorder struct {
	mu      sync.Mutex
	dec     *opus.Decoder
	buf     []int16
	silence []byte
	pkts    []wirePkt
	pcm     []int16
	err     error
}

type wirePkt struct {
	marker, silence bool
	at              time.Time
}

func newWireRecorder(t testing.TB) *wireRecorder {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &wireRecorder{dec: dec, buf: make([]int16, 5760)}
}

func (w *wireRecorder) WriteRTP(p *rtp.Packet) error {
	at := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.dec.Decode(p.Payload, w.buf)
	if err == nil && n != FrameSamples {
		err = fmt.Errorf("packet %d decodes to %d samples", len(w.pkts), n)
	}
	if err != nil && w.err == nil {
		w.err = err
	}
	w.pcm = append(w.pcm, w.buf[:FrameSamples]...)
	w.pkts = append(w.pkts, wirePkt{marker: p.Marker, silence: bytes.Equal(p.Payload, w.silence), at: at})
	return nil
}

func (w *wireRecorder) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pkts)
}

// words is the test utterance: one tone per word, 100 ms each, under
// 0.4 × 8 kHz so that every input rate carries all of them.
var words = []float64{440, 620, 860, 1180, 1500, 1900}

const (
	wordMs  = 100
	wordAmp = 8000.0
)

// utterance renders freqs as consecutive words at rate, phase-continuous.
func utterance(rate int, freqs []float64) []byte {
	n := rate * wordMs / 1000
	var b []byte
	phase := 0.0
	for _, f := range freqs {
		b = append(b, tone(rate, f, wordAmp, phase, 0, n)...)
		phase += 2 * math.Pi * f * float64(n) / float64(rate)
	}
	return b
}

// delivery is how a TTS sends one generation.
type delivery struct {
	name     string
	rate     int
	first    time.Duration // first message's audio
	chunk    time.Duration // every later message's audio
	speed    float64       // 0: as fast as possible; 1: real time; 1.25 ...
	endAfter time.Duration // EndGeneration this long after the last audio (munsit: 400 ms)

	firstFrame *time.Time // if set: when the first whole frame was queued
}

// send delivers pcm as d describes: the message carrying audio [a, b) is
// sent at start + a/speed.
// It returns when it started and how late its latest message was.
func (d delivery) send(ctx context.Context, s *Stream, pcm []byte) (start time.Time, late time.Duration, err error) {
	start = time.Now()
	bps := d.rate * 2 // bytes per second
	size := func(t time.Duration) int { return int(t.Seconds()*float64(bps)) &^ 1 }
	for off, i := 0, 0; off < len(pcm); i++ {
		k := size(d.chunk)
		if i == 0 {
			k = size(d.first)
		}
		k = min(k, len(pcm)-off)
		due := start
		if d.speed > 0 {
			due = start.Add(time.Duration(float64(off) / float64(bps) / d.speed * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
		if err := s.Write(ctx, pcm[off:off+k], d.rate); err != nil {
			return start, late, err
		}
		if d.speed > 0 { // lateness includes the Write: when the audio was queued
			late = max(late, time.Since(due))
		}
		if d.firstFrame != nil && d.firstFrame.IsZero() {
			if st := s.Stats(); st.QueuedFrames > 0 || st.SpeechFrames > 0 {
				*d.firstFrame = time.Now() // where a pacer without pre-roll could start
			}
		}
		off += k
	}
	time.Sleep(d.endAfter)
	return start, late, s.EndGeneration(ctx)
}

// wireRun is one utterance played through a real Stream.
type wireRun struct {
	w       *wireRecorder
	s       *Stream
	started time.Time     // first Write
	endIdx  int           // packets on the wire when EndGeneration returned
	first   time.Time     // when the first whole frame was queued
	late    time.Duration // the producer's worst lateness against its schedule
	events  []Event
	evIdx   []int
	stats   Stats
}

// playUtterance plays freqs with d on a fresh stream and returns when the
// generation's EventDone is on the wire (plus two frames).
func playUtterance(t testing.TB, d delivery, cfg StreamConfig, freqs []float64) (*wireRun, error) {
	r := &wireRun{w: newWireRecorder(t)}
	done := make(chan struct{}, 1)
	var evMu sync.Mutex
	cfg.Writer = r.w
	cfg.OnEvent = func(e Event) {
		evMu.Lock()
		r.events = append(r.events, e)
		r.evIdx = append(r.evIdx, r.w.count())
		evMu.Unlock()
		if e.Kind == EventDone {
			select {
			case done <- struct{}{}:
			default:
			}
		}
	}
	s, err := NewStream(cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r.s = s
	r.w.silence = s.silence
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); _ = s.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	time.Sleep(3 * FrameDuration) // a call is idle before the bot speaks
	d.firstFrame = &r.first
	r.started, r.late, err = d.send(ctx, s, utterance(d.rate, freqs))
	if err != nil {
		return nil, err
	}
	r.endIdx = r.w.count()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return nil, errors.New("no EventDone within 10 s")
	}
	n := r.w.count()
	for r.w.count() < n+2 {
		time.Sleep(FrameDuration / 4)
	}
	cancel()
	<-ran
	r.stats = s.Stats()
	evMu.Lock()
	defer evMu.Unlock()
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r, r.w.err
}

// check asserts the receiver's view of one utterance: one talkspurt of
// exactly the packets the input needs (its samples plus the encoder's
// lookahead, in whole frames), with no silence packet and no second marker
// inside, every word at its frequency and level where it belongs (the last
// one included), and one speaking and one done on its first and last packet.
func (r *wireRun) check(d delivery, freqs []float64, lookahead int) error {
	nIn := len(freqs) * d.rate * wordMs / 1000
	n48 := (nIn*SampleRate + d.rate/2) / d.rate
	want := (n48 + lookahead + FrameSamples - 1) / FrameSamples
	first, markers, speech := -1, 0, 0
	for i, p := range r.w.pkts {
		if p.marker {
			markers++
			if first < 0 {
				first = i
			}
		}
		if !p.silence {
			speech++
		}
	}
	if markers != 1 || speech != want {
		return fmt.Errorf("%d talkspurts, %d speech packets; want 1 and %d (%s)", markers, speech, want, r.pattern())
	}
	for i := first; i < first+want; i++ {
		if r.w.pkts[i].silence {
			return fmt.Errorf("silence packet %d inside the utterance (%s)", i-first, r.pattern())
		}
	}
	// done goes with the last packet, or with the frame after
	// EndGeneration when that came later (munsit: 400 ms after the audio).
	if len(r.events) != 2 || r.events[0].Kind != EventSpeaking || r.events[1].Kind != EventDone ||
		r.evIdx[0] != first+1 || r.evIdx[1] < first+want || (r.evIdx[1] > first+want && r.evIdx[1] > r.endIdx+1) {
		return fmt.Errorf("events %v after packets %v; want speaking after %d, done after %d or at EndGeneration (%d)",
			r.events, r.evIdx, first+1, first+want, r.endIdx)
	}
	// Input sample j (48 kHz) decodes at pcm[first·960 + lookahead + j].
	base := first*FrameSamples + lookahead
	w48 := SampleRate * wordMs / 1000
	edge := SampleRate * 10 / 1000 // skip 10 ms at each word edge
	for i, f := range freqs {
		seg := r.w.pcm[base+i*w48+edge : base+(i+1)*w48-edge]
		amp := goertzelAmp(seg, f)
		if lvl := db(amp / wordAmp); math.Abs(lvl) > 1.5 {
			return fmt.Errorf("word %d (%.0f Hz) at %.1f dB", i, f, lvl)
		}
		for _, g := range words {
			if g != f && goertzelAmp(seg, g) > amp/30 {
				return fmt.Errorf("word %d (%.0f Hz) carries %.0f Hz", i, f, g)
			}
		}
	}
	return nil
}

// pattern draws the packets: M marker, s speech, . silence.
func (r *wireRun) pattern() string {
	var b bytes.Buffer
	for _, p := range r.w.pkts {
		switch {
		case p.marker:
			b.WriteByte('M')
		case p.silence:
			b.WriteByte('.')
		default:
			b.WriteByte('s')
		}
	}
	return b.String()
}

// firstAudio is how long after the first Write the talkspurt started.
func (r *wireRun) firstAudio() time.Duration {
	for _, p := range r.w.pkts {
		if p.marker {
			return p.at.Sub(r.started)
		}
	}
	return -1
}

// goertzelAmp is the amplitude of the f Hz component of x (48 kHz).
func goertzelAmp(x []int16, f float64) float64 {
	w := 2 * math.Pi * f / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(max(p, 0)) / float64(len(x))
}

// deliveries are the TTS behaviours of the issue.
var deliveries = []delivery{
	{name: "asap-24k-isFinal", rate: 24000, first: 100 * time.Millisecond, chunk: 100 * time.Millisecond},
	{name: "asap-16k-munsit", rate: 16000, first: 40 * time.Millisecond, chunk: 40 * time.Millisecond, endAfter: 400 * time.Millisecond},
	{name: "realtime-24k-first10-munsit", rate: 24000, first: 10 * time.Millisecond, chunk: 20 * time.Millisecond, speed: 1, endAfter: 400 * time.Millisecond},
	{name: "realtime-8k-first40-munsit", rate: 8000, first: 40 * time.Millisecond, chunk: 20 * time.Millisecond, speed: 1, endAfter: 400 * time.Millisecond},
	{name: "realtime-22k-first73-munsit", rate: 22050, first: 73 * time.Millisecond, chunk: 40 * time.Millisecond, speed: 1, endAfter: 400 * time.Millisecond},
	{name: "realtime-16k-first100", rate: 16000, first: 100 * time.Millisecond, chunk: 60 * time.Millisecond, speed: 1},
	{name: "realtime-24k-first200-munsit", rate: 24000, first: 200 * time.Millisecond, chunk: 50 * time.Millisecond, speed: 1, endAfter: 400 * time.Millisecond},
	{name: "1.25x-24k-60ms-munsit", rate: 24000, first: 60 * time.Millisecond, chunk: 60 * time.Millisecond, speed: 1.25, endAfter: 400 * time.Millisecond},
	{name: "1.25x-8k-60ms", rate: 8000, first: 60 * time.Millisecond, chunk: 60 * time.Millisecond, speed: 1.25},
}

// wireRuns is how many times each delivery is played: enough to catch a
// defect that shows one run in four (0.75^8 = 10 % chance to miss it).
const wireRuns = 8

// maxProducerLate: a run whose producer woke up later than this against
// its schedule (a loaded machine) did not deliver in real time, so it
// proves nothing about real-time delivery: it is played again.
const maxProducerLate = 15 * time.Millisecond

// runConcurrently plays wireRuns utterances, four at a time (they are
// mostly asleep), replaying those whose producer fell behind its schedule,
// at most 3·wireRuns plays in all.
func runConcurrently(t *testing.T, d delivery, cfg StreamConfig, freqs []float64) []*wireRun {
	t.Helper()
	var valid []*wireRun
	plays := 0
	for len(valid) < wireRuns && plays < 3*wireRuns {
		n := min(4, wireRuns-len(valid))
		runs := make([]*wireRun, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { runs[i], errs[i] = playUtterance(t, d, cfg, freqs) })
		}
		wg.Wait()
		plays += n
		for i, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			if runs[i].late <= maxProducerLate {
				valid = append(valid, runs[i])
			}
		}
	}
	if len(valid) < wireRuns {
		t.Skipf("only %d of %d plays kept real time (machine too loaded to test real-time delivery)", len(valid), plays)
	}
	t.Logf("%d plays, %d kept real time", plays, len(valid))
	return valid
}

func TestWireUtteranceWhole(t *testing.T) {
	for _, d := range deliveries {
		t.Run(d.name, func(t *testing.T) {
			runs := runConcurrently(t, d, StreamConfig{}, words)
			failed := 0
			for i, r := range runs {
				if err := r.check(d, words, r.s.lookahead); err != nil {
					failed++
					t.Errorf("run %d: %v; drains %d, resumed %d", i, err, r.stats.Drains, r.stats.Resumes)
				}
				if r.stats.Underruns != 0 {
					t.Errorf("run %d: %d underruns", i, r.stats.Underruns)
				}
			}
			t.Logf("%d runs, %d failed", len(runs), failed)
		})
	}
}

// wordsB is a second utterance, on frequencies far from those of words.
var wordsB = []float64{2300, 2650, 3000}

// TestWireClearLeavesNothing: a generation delivered in real time in 20 ms
// messages (so libsoxr holds a tail, a frame is partial, drains happen) is
// cleared mid-word; then another generation is spoken. The receiver hears
// silence from the frame after the Clear (the frame being written may
// finish) until the new generation, and nothing of the old one ever again.
func TestWireClearLeavesNothing(t *testing.T) {
	const plays = wireRuns
	var wg sync.WaitGroup
	errs := make([]error, plays)
	for i := range plays {
		if i%4 == 0 {
			wg.Wait() // four at a time
		}
		wg.Go(func() { errs[i] = playClear(t, time.Duration(230+13*i)*time.Millisecond) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("play %d: %v", i, err)
		}
	}
	t.Logf("%d plays", plays)
}

func playClear(t *testing.T, after time.Duration) error {
	w := newWireRecorder(t)
	events := make(chan Event, 16)
	s, err := NewStream(StreamConfig{Writer: w, OnEvent: func(e Event) { events <- e }})
	if err != nil {
		return err
	}
	defer s.Close()
	w.silence = s.silence
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = s.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	// Generation A in real time until the test stops it.
	stopA := make(chan struct{})
	doneA := make(chan error, 1)
	go func() {
		d := delivery{rate: 24000, first: 20 * time.Millisecond, chunk: 20 * time.Millisecond, speed: 1}
		pcm := utterance(d.rate, words)
		start := time.Now()
		for off := 0; off < len(pcm); off += 960 {
			select {
			case <-stopA:
				doneA <- nil
				return
			case <-time.After(time.Until(start.Add(time.Duration(off/48) * time.Millisecond))):
			}
			if err := s.Write(ctx, pcm[off:off+960], d.rate); err != nil {
				doneA <- err
				return
			}
		}
		doneA <- nil
	}()
	time.Sleep(after)
	close(stopA)
	if err := <-doneA; err != nil {
		return err
	}
	k := w.count()
	s.Clear()
	if e := <-events; e.Kind != EventSpeaking {
		return fmt.Errorf("generation A: %v, want speaking", e.Kind)
	}
	time.Sleep(5 * FrameDuration)
	// Generation B, as fast as possible.
	if _, _, err := (delivery{rate: 24000, first: 100 * time.Millisecond, chunk: 100 * time.Millisecond}).send(ctx, s, utterance(24000, wordsB)); err != nil {
		return err
	}
	for _, want := range []EventKind{EventSpeaking, EventDone} {
		select {
		case e := <-events:
			if e.Kind != want {
				return fmt.Errorf("generation B: %v, want %v", e.Kind, want)
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("generation B: no %v", want)
		}
	}
	cancel()
	<-ran
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	select {
	case e := <-events:
		return fmt.Errorf("extra event %v", e.Kind)
	default:
	}
	// From the frame after the one in flight at the Clear: silence until
	// B's marker, then B alone.
	b := -1
	for i := k + 1; i < len(w.pkts); i++ {
		if w.pkts[i].marker {
			b = i
			break
		}
		if !w.pkts[i].silence {
			return fmt.Errorf("packet %d after the Clear (at %d) is speech", i, k)
		}
	}
	if b < 0 {
		return errors.New("generation B never started")
	}
	// Decoded: no word of A in any frame from two frames after the Clear
	// (the decoder's overlap rings out the frame before) up to B, nor after
	// B; B's words at their level, with no word of A under them.
	base := b*FrameSamples + s.lookahead
	w48, edge := SampleRate*wordMs/1000, SampleRate*10/1000
	endB := base + len(wordsB)*w48 + 2*FrameSamples
	for i := (k + 2) * FrameSamples; i+FrameSamples <= len(w.pcm); i += FrameSamples {
		if i+FrameSamples > b*FrameSamples && i < endB {
			continue
		}
		for _, f := range words {
			if a := goertzelAmp(w.pcm[i:i+FrameSamples], f); a > wordAmp/100 {
				return fmt.Errorf("%.0f Hz of the cleared generation at %.1f%% in frame %d (Clear at %d, B from %d)",
					f, 100*a/wordAmp, i/FrameSamples, k, b)
			}
		}
	}
	for i, f := range wordsB {
		seg := w.pcm[base+i*w48+edge : base+(i+1)*w48-edge]
		amp := goertzelAmp(seg, f)
		if lvl := db(amp / wordAmp); math.Abs(lvl) > 1.5 {
			return fmt.Errorf("B word %d (%.0f Hz) at %.1f dB", i, f, lvl)
		}
		for _, g := range words {
			if goertzelAmp(seg, g) > amp/30 {
				return fmt.Errorf("B word %d (%.0f Hz) carries %.0f Hz of the cleared generation", i, f, g)
			}
		}
	}
	return nil
}

// TestMeasurePreRoll (MEDIA_MEASURE=1: the default; =all: several) plays every delivery with several
// pre-roll settings and prints, per setting, the runs the receiver found
// broken, underruns, drains, and the first-audio latency: from the first
// Write, and added over starting at the first whole frame (what the pacer
// did without pre-roll).
func TestMeasurePreRoll(t *testing.T) {
	if os.Getenv("MEDIA_MEASURE") == "" {
		t.Skip("set MEDIA_MEASURE=1 to measure")
	}
	settings := []time.Duration{DefaultPreRoll}
	if os.Getenv("MEDIA_MEASURE") == "all" {
		settings = []time.Duration{-1, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond, 80 * time.Millisecond}
	}
	for _, pr := range settings {
		var broken, runs int
		var under, drains, resumes uint64
		var sumLat, maxLat, sumAdd, maxAdd time.Duration
		for _, d := range deliveries {
			var dLat, dAdd time.Duration
			dRuns := 0
			for range 2 {
				var wg sync.WaitGroup
				res := make([]*wireRun, 4)
				for i := range res {
					wg.Go(func() {
						r, err := playUtterance(t, d, StreamConfig{PreRoll: pr}, words)
						if err != nil {
							t.Error(err)
						}
						res[i] = r
					})
				}
				wg.Wait()
				for _, r := range res {
					if r == nil {
						continue
					}
					runs++
					if r.check(d, words, r.s.lookahead) != nil {
						broken++
					}
					under += r.stats.Underruns
					drains += r.stats.Drains
					resumes += r.stats.Resumes
					lat := r.firstAudio()
					add := lat - r.first.Sub(r.started)
					sumLat += lat
					sumAdd += add
					maxLat, maxAdd = max(maxLat, lat), max(maxAdd, add)
					dLat, dAdd, dRuns = dLat+lat, dAdd+add, dRuns+1
				}
			}
			if dRuns > 0 {
				t.Logf("preroll %v %s: first audio mean %v, added mean %v", pr, d.name,
					(dLat / time.Duration(dRuns)).Round(time.Millisecond), (dAdd / time.Duration(dRuns)).Round(time.Millisecond))
			}
		}
		t.Logf("preroll %v: %d/%d runs broken, %d underrun frames, %d drains (%d resumed), first audio mean %v max %v, added mean %v max %v",
			pr, broken, runs, under, drains, resumes, sumLat/time.Duration(runs), maxLat, sumAdd/time.Duration(runs), maxAdd)
	}
}
