package bridge

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// Receiver-side tests: a real Pion peer receives the call, a fresh libopus
// decoder decodes every packet from the call's first, and the assertions
// are on the decoded audio. The embedded TTS speaks the test-tones voice
// (one tone per word), so every 20 ms frame tells which word, and so which
// generation, it carries. Timing is kept out of the assertions: they count
// frames.

// wireRuns is how many utterances each timing-sensitive case plays: a
// defect that shows up one time in four escapes 12 with probability
// (3/4)^12 < 4%.
const wireRuns = 12

// toneLevel is the RMS (int16 units) above which a decoded frame carries
// tone: a full frame of the test voice is ~7000, Opus silence ~0.
const toneLevel = 1000

// fullToneLevel is the least RMS of a frame filled with tone: the test
// voice's is 10000/√2 ≈ 7071; a frame with a few ms of silence is below.
const fullToneLevel = 6000

// wireFrame is one decoded packet.
type wireFrame struct {
	seq    uint16
	marker bool
	at     time.Time // when the receiver decoded it
	rms    float64
	// share[i] is the part of the frame's energy at the receiver's i-th
	// frequency (1 for a pure tone there, ~0.25 for half a frame of it).
	share []float64
}

// wireRx decodes every packet of a call as a receiver does.
type wireRx struct {
	freqs  []float64
	mu     sync.Mutex
	frames []wireFrame // guarded by mu
	dups   int         // guarded by mu: retransmissions (NACK) skipped
	notify chan struct{}
}

// newWireRx decodes off's packets until the test ends, measuring each
// frame's share of energy at freqs.
func newWireRx(t *testing.T, off *offerer, freqs []float64) *wireRx {
	t.Helper()
	dec, err := opus.NewDecoder(48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := &wireRx{freqs: freqs, notify: make(chan struct{}, 1)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		pcm := make([]int16, 5760)
		x := make([]float64, 960)
		seen := map[uint16]bool{}
		for {
			select {
			case <-stop:
				return
			case p := <-off.packets:
				if seen[p.SequenceNumber] {
					r.mu.Lock()
					r.dups++
					r.mu.Unlock()
					continue
				}
				seen[p.SequenceNumber] = true
				n, err := dec.Decode(p.Payload, pcm)
				if err != nil || n != 960 {
					t.Errorf("decode seq %d: %d samples, %v", p.SequenceNumber, n, err)
					return
				}
				var e float64
				for i, v := range pcm[:n] {
					x[i] = float64(v)
					e += x[i] * x[i]
				}
				f := wireFrame{seq: p.SequenceNumber, marker: p.Marker, at: time.Now(), rms: math.Sqrt(e / 960), share: make([]float64, len(freqs))}
				if e > 0 {
					for i, fr := range freqs {
						f.share[i] = goertzelPower(x, fr, 48000) / (e * 960 / 2)
					}
				}
				r.mu.Lock()
				r.frames = append(r.frames, f)
				r.mu.Unlock()
				select {
				case r.notify <- struct{}{}:
				default:
				}
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return r
}

// goertzelPower is the Goertzel power of x at frequency f (sample rate fs).
func goertzelPower(x []float64, f, fs float64) float64 {
	c := 2 * math.Cos(2*math.Pi*f/fs)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

func (r *wireRx) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

func (r *wireRx) snapshot() []wireFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wireFrame(nil), r.frames...)
}

// waitFrames waits until n frames were received.
func (r *wireRx) waitFrames(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for r.len() < n {
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("received %d frames, want %d", r.len(), n)
		}
	}
}

// waitTone waits until a frame after index from carries tone.
func (r *wireRx) waitTone(t *testing.T, from int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		fs := r.snapshot()
		for _, f := range fs[min(from, len(fs)):] {
			if f.rms > toneLevel {
				return
			}
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatal("no tone received")
		}
	}
}

// talkspurt is a run of tone frames.
type talkspurt struct{ first, last int } // frame indexes, inclusive

func (s talkspurt) frames() int { return s.last - s.first + 1 }

// talkspurts splits fs into runs of tone frames.
func talkspurts(fs []wireFrame) []talkspurt {
	var out []talkspurt
	for i, f := range fs {
		if f.rms <= toneLevel {
			continue
		}
		if n := len(out); n > 0 && out[n-1].last == i-1 {
			out[n-1].last = i
		} else {
			out = append(out, talkspurt{i, i})
		}
	}
	return out
}

// dominant returns the index of the frequency with the largest share.
func (f wireFrame) dominant() int {
	best := 0
	for i, s := range f.share {
		if s > f.share[best] {
			best = i
		}
	}
	return best
}

// wireCall is a call whose receiver decodes the test tones.
type wireCall struct {
	b  *testBridge
	id string
	rx *wireRx
	bt *bot
}

// newWireCall starts a bridge with the embedded TTS configured by scfg in
// dialect d, a call speaking the test-tones voice, its receiver and a bot.
func newWireCall(t *testing.T, d tts.Dialect, scfg ttsserver.ServerConfig, freqs []float64) *wireCall {
	t.Helper()
	b := newBridge(t, Config{TTSDialect: d}, seams{ttsServer: scfg})
	off := newOfferer(t, 1<<14, nil)
	resp, body := b.do(t, "POST", "/v1/calls?voice_id="+ttsserver.TestTonesVoice, "application/sdp", []byte(off.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	rx := newWireRx(t, off, freqs)
	off.accept(t, string(body))
	waitFor(t, off.connected, "the offerer to connect")
	b.waitState(t, id, stateConnected)
	wc := &wireCall{b: b, id: id, rx: rx, bt: b.dialBot(t, id)}
	rx.waitFrames(t, 5) // the stream runs
	return wc
}

func (wc *wireCall) say(t *testing.T, text string) {
	t.Helper()
	resp, body := wc.b.do(t, "POST", "/v1/calls/"+wc.id+"/text", "application/json",
		jsonBody(t, map[string]any{"text": text, "flush": true}))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("text: %d %s", resp.StatusCode, body)
	}
}

func (wc *wireCall) clear(t *testing.T) {
	t.Helper()
	if resp, body := wc.b.do(t, "POST", "/v1/calls/"+wc.id+"/clear", "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("clear: %d %s", resp.StatusCode, body)
	}
}

// words is n test-tone words from freqs (cycling), and their frequencies.
func words(freqs []float64, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = fmt.Sprint(freqs[i%len(freqs)])
	}
	return strings.Join(w, " ")
}

// wordFrames is how many 20 ms frames n test-tone words last.
func wordFrames(n int) int { return n * int(ttsserver.ToneWordDuration/(20*time.Millisecond)) }

// TestWireUtterances: whole utterances, one after another, with the
// delivery patterns of real TTS services. For each utterance: one
// talkspurt (no silence inside it), its full length in frames (the words'
// frames, plus at most one for the codec's delay), the first and last
// words' tones at its edges, the marker bit on its first packet only, and
// speaking then done on the bot socket.
//
// The TTS delivers faster than real time in every case: at exactly real
// time (Pace 1, 100 ms chunks) there is no slack at all, and the embedded
// server, starved on a loaded machine, then delivers late itself; such runs
// passed alone (24 of 24 utterances with 40 and 73 ms first messages) but
// not under a full parallel `make test`.
func TestWireUtterances(t *testing.T) {
	freqs := []float64{500, 900, 1300, 1700, 2100}
	cases := []struct {
		name string
		d    tts.Dialect
		cfg  ttsserver.ServerConfig
	}{
		{"asap/munsit", tts.DialectMunsit, ttsserver.ServerConfig{Pace: ttsserver.PaceASAP, FirstChunkDelay: -1}},
		{"asap/faseeh", tts.DialectFaseeh, ttsserver.ServerConfig{Pace: ttsserver.PaceASAP, FirstChunkDelay: -1}},
		{"1.25x-60ms/munsit", tts.DialectMunsit, ttsserver.ServerConfig{Pace: 1.25, ChunkDuration: 60 * time.Millisecond}},
		{"1.25x-60ms/faseeh", tts.DialectFaseeh, ttsserver.ServerConfig{Pace: 1.25, ChunkDuration: 60 * time.Millisecond}},
		{"first40ms/munsit", tts.DialectMunsit, ttsserver.ServerConfig{FirstChunkDuration: 40 * time.Millisecond}},
		{"first40ms/faseeh", tts.DialectFaseeh, ttsserver.ServerConfig{FirstChunkDuration: 40 * time.Millisecond}},
		{"first10ms-1.25x-60ms/munsit", tts.DialectMunsit, ttsserver.ServerConfig{FirstChunkDuration: 10 * time.Millisecond,
			Pace: 1.25, ChunkDuration: 60 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wc := newWireCall(t, tc.d, tc.cfg, freqs)
			const n = 3 // words per utterance
			var starts []int
			for run := range wireRuns {
				start := wc.rx.len()
				starts = append(starts, start)
				wc.say(t, words(freqs[run%2:], n))
				wc.bt.expect(t, "speaking")
				wc.bt.expect(t, "done")
				wc.rx.waitFrames(t, wc.rx.len()+5) // done's frame, then silence
			}
			fs := wc.rx.snapshot()
			for run, start := range starts {
				end := len(fs)
				if run+1 < len(starts) {
					end = starts[run+1]
				}
				ts := talkspurts(fs[start:end])
				if len(ts) != 1 {
					t.Errorf("utterance %d: %d talkspurts %v, want 1 (silence inside it)", run, len(ts), ts)
					continue
				}
				s := ts[0]
				if got, want := s.frames(), wordFrames(n); got < want || got > want+1 {
					var lv []int
					for _, f := range fs[start+s.first : start+s.last+1] {
						lv = append(lv, int(f.rms))
					}
					t.Errorf("utterance %d: %d tone frames, want %d or %d; levels %v", run, got, want, want+1, lv)
				}
				// A gap shorter than a frame shows as a weak frame inside.
				for i := s.first + 1; i < s.last; i++ {
					if fs[start+i].rms < fullToneLevel {
						t.Errorf("utterance %d: frame %d of %d inside the talkspurt is partly silent (RMS %.0f)", run, i-s.first, s.frames(), fs[start+i].rms)
					}
				}
				first, last := fs[start+s.first], fs[start+s.last-1]
				if first.dominant() != run%2 || last.dominant() != (run%2+n-1)%len(freqs) {
					t.Errorf("utterance %d: edges carry tones %v…%v, want the first and last words'",
						run, freqs[first.dominant()], freqs[last.dominant()])
				}
				markers := 0
				for i, f := range fs[start:end] {
					if f.marker {
						markers++
						if i != s.first {
							t.Errorf("utterance %d: marker bit on frame %d, talkspurt starts at %d", run, i, s.first)
						}
					}
				}
				if markers != 1 {
					t.Errorf("utterance %d: %d marker bits, want 1", run, markers)
				}
			}
			info := wc.b.getInfo(t, wc.id)
			t.Logf("%d utterances; frames sent %d, late %d", len(starts), info.FramesSent, info.LateFrames)
		})
	}
}

// bargeIn is one clear's outcome, in frames after the clear request.
type bargeIn struct {
	latency int    // frames with the interrupted generation's tones after the request
	leaked  int    // such frames after the first silent one (heard again later)
	late    uint64 // frames the pacer sent late meanwhile (a loaded machine)
}

// runBargeIns plays n barge-ins on wc: a long utterance of old tones, a
// clear once it is heard, then a short one of new tones. It checks that
// nothing of the old one is heard after the clear's edge, that the new one
// is whole with its own speaking and done, and returns each clear's
// latency in frames.
func runBargeIns(t *testing.T, wc *wireCall, n int, old, fresh []int) []bargeIn {
	t.Helper()
	out := make([]bargeIn, 0, n)
	for run := range n {
		start := wc.rx.len()
		wc.say(t, words(pick(wc.rx.freqs, old), 10))
		wc.expect(t, run, "speaking", "the old utterance")
		wc.rx.waitTone(t, start)
		wc.rx.waitFrames(t, wc.rx.len()+2) // a few frames into it
		lateBefore := wc.b.getInfo(t, wc.id).LateFrames
		at := wc.rx.len()
		if run%2 == 0 {
			wc.clear(t)
			wc.say(t, words(pick(wc.rx.freqs, fresh), 2))
		} else { // the bot's clear, and its text after it on the same socket
			wc.bt.send(t, map[string]any{"type": "clear"})
			wc.bt.send(t, map[string]any{"type": "text", "text": words(pick(wc.rx.freqs, fresh), 2), "flush": true})
		}
		// The interrupted generation gets no done: the next events are the
		// new one's.
		wc.expect(t, run, "speaking", "the new utterance")
		wc.expect(t, run, "done", "the new utterance")
		wc.rx.waitFrames(t, wc.rx.len()+5)
		fs := wc.rx.snapshot()[at:]
		isOld := func(f wireFrame) bool {
			if f.rms <= toneLevel {
				return false
			}
			for _, i := range old {
				if f.share[i] > 0.05 {
					return true
				}
			}
			return false
		}
		b := bargeIn{late: wc.b.getInfo(t, wc.id).LateFrames - lateBefore}
		edge := -1 // first frame after the request without old tones
		for i, f := range fs {
			if !isOld(f) {
				edge = i
				break
			}
		}
		if edge < 0 {
			t.Fatalf("barge-in %d: the old utterance never stopped", run)
		}
		b.latency = edge
		for _, f := range fs[edge:] {
			if isOld(f) {
				b.leaked++
			}
		}
		if b.leaked > 0 {
			t.Errorf("barge-in %d: %d frames of the interrupted generation heard after its edge", run, b.leaked)
		}
		ts := talkspurts(fs[edge:])
		if len(ts) != 1 {
			t.Errorf("barge-in %d: %d talkspurts after the clear, want 1 (the new utterance)", run, len(ts))
		} else if got, want := ts[0].frames(), wordFrames(2); got < want || got > want+1 {
			var lv []int
			for _, f := range fs[edge+ts[0].first : edge+ts[0].last+1] {
				lv = append(lv, int(f.rms))
			}
			t.Errorf("barge-in %d: new utterance %d tone frames, want %d or %d; levels %v", run, got, want, want+1, lv)
		}
		out = append(out, b)
	}
	return out
}

// expect fails unless the bot's next event has type typ.
func (wc *wireCall) expect(t *testing.T, run int, typ, what string) {
	t.Helper()
	select {
	case ev, ok := <-wc.bt.events:
		if !ok || ev["type"] != typ {
			t.Fatalf("run %d: event %v, want %s of %s", run, ev, typ, what)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("run %d: no %s event for %s", run, typ, what)
	}
}

func pick(freqs []float64, idx []int) []float64 {
	out := make([]float64, len(idx))
	for i, j := range idx {
		out[i] = freqs[j]
	}
	return out
}

// bargeInFreqs: old utterances use the first three, new ones the last two.
var bargeInFreqs = []float64{400, 700, 1000, 1900, 2500}

// TestWireBargeIn: barge-in against a TTS that keeps streaming the cleared
// generation for 150 ms after it reads the clear, answers pings from its
// read loop and delivers at 1.25× real time: nothing of the interrupted
// generation after the clear's edge, the new utterance whole, and the edge
// within 2 frames (40 ms) of the request (3 on a loaded machine; the median
// within 1 frame). It logs the latency's p50, p99
// and max; VOICEBRIDGE_BARGEIN_CLEARS=50 makes it measure 50 clears per
// dialect:
//
//	VOICEBRIDGE_BARGEIN_CLEARS=50 go test -tags nolibopusfile -run TestWireBargeIn -v ./bridge/
func TestWireBargeIn(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectMunsit, tts.DialectFaseeh} {
		t.Run(string(d), func(t *testing.T) {
			n := wireRuns
			if v, err := strconv.Atoi(os.Getenv("VOICEBRIDGE_BARGEIN_CLEARS")); err == nil && v > n {
				n = v
			}
			wc := newWireCall(t, d, laggingTTS(), bargeInFreqs)
			res := runBargeIns(t, wc, n, []int{0, 1, 2}, []int{3, 4})
			lat := make([]int, len(res))
			for i, r := range res {
				lat[i] = r.latency
				// The contract's 40 ms is 2 frames; one more is allowed for
				// a machine too loaded to run the pacer or the request on
				// time (the log says how late the pacer was). A clear that
				// waited on the network would take 3 to 10 frames every time.
				if r.latency > 3 {
					t.Errorf("barge-in %d: %d frames of the old utterance after the request (%d late frames meanwhile), want ≤ 2 (40 ms)", i, r.latency, r.late)
				} else if r.latency > 2 {
					t.Logf("barge-in %d: %d frames after the request (%d late frames meanwhile)", i, r.latency, r.late)
				}
			}
			t.Logf("latency in frames after the request, in order: %v", lat)
			sort.Ints(lat)
			q := func(p float64) int { return 20 * lat[int(math.Ceil(p*float64(len(lat))))-1] }
			if q(0.5) > 20 {
				t.Errorf("barge-in p50 %d ms, want ≤ 20 ms (1 frame)", q(0.5))
			}
			t.Logf("%s barge-in over %d clears: p50 %d ms, p99 %d ms, max %d ms (frames ×20 ms)",
				d, len(lat), q(0.5), q(0.99), 20*lat[len(lat)-1])
		})
	}
}

// laggingTTS is the embedded TTS behaving like a hosted service at its
// worst for barge-in.
func laggingTTS() ttsserver.ServerConfig {
	return ttsserver.ServerConfig{Pace: 1.25, ChunkDuration: 60 * time.Millisecond,
		Faults: ttsserver.Faults{ClearLag: 150 * time.Millisecond, ReaderPongs: true}}
}
