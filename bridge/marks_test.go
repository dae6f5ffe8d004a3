package bridge

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

var markFreqs = []float64{400, 700, 1000}

// TestWireMarks: a mark sent after text comes back once the last packet of
// that text's audio was sent: a real Pion peer has received it, or it is
// the one frame in flight (never frames of tone still to come); not
// cleared, once, in order. It logs how long after that packet's arrival
// at the receiver the mark arrived (p50, p99; negative: the packet was
// still in flight).
func TestWireMarks(t *testing.T) {
	wc := newWireCall(t, tts.DialectMunsit, ttsserver.ServerConfig{}, markFreqs)
	var delays []time.Duration
	for run := range wireRuns {
		from := wc.rx.len()
		wc.bt.send(t, map[string]any{"type": "text", "text": words(markFreqs, 3), "flush": true})
		name := fmt.Sprint("m", run)
		wc.bt.send(t, map[string]any{"type": "mark", "name": name})
		ev := wc.bt.next(t, "speaking", "done")
		at := time.Now()
		n := wc.rx.len() // frames received when the mark arrived
		if ev["type"] != "mark" || ev["name"] != name || ev["cleared"] != false {
			t.Fatalf("run %d: event %v, want mark %s not cleared", run, ev, name)
		}
		wc.rx.waitFrames(t, n+5) // anything still in flight, and silence
		fs := wc.rx.snapshot()
		sp := talkspurts(fs[from:])
		if len(sp) != 1 || sp[0].frames() < wordFrames(3) {
			t.Fatalf("run %d: talkspurts %v, want one of %d frames", run, sp, wordFrames(3))
		}
		last := from + sp[0].last
		// The pacer writes the packet, then queues the mark event: the two
		// race over loopback (UDP+SRTP+decoder goroutine against the bot
		// socket), so the packet may be one frame behind at the receiver.
		// A mark answered early would leave frames of tone to come.
		if last > n {
			t.Fatalf("run %d: the mark came when %d frames were received; the utterance's last tone frame is frame %d", run, n, last)
		}
		delays = append(delays, at.Sub(fs[last].at))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	q := func(p float64) time.Duration { return delays[int(math.Ceil(p*float64(len(delays))))-1] }
	t.Logf("mark after the last packet of its audio (receiver side), %d runs: p50 %v, p99 %v, min %v",
		len(delays), q(0.5), q(0.99), delays[0])
}

// TestWireMarksCleared: marks behind audio a clear dropped, or behind text
// the clear forgot (untriggered), come back cleared, in order, and a mark
// after the clear plays normally. Bad names get an error event.
func TestWireMarksCleared(t *testing.T) {
	wc := newWireCall(t, tts.DialectMunsit, ttsserver.ServerConfig{}, markFreqs)
	bt := wc.bt
	bt.send(t, map[string]any{"type": "mark", "name": ""})
	if ev := bt.next(t); ev["type"] != "error" || ev["code"] != "invalid_field" {
		t.Fatalf("empty mark name: %v", ev)
	}
	bt.send(t, map[string]any{"type": "mark", "name": string(make([]byte, maxMarkName+1))})
	if ev := bt.next(t); ev["type"] != "error" || ev["code"] != "invalid_field" {
		t.Fatalf("long mark name: %v", ev)
	}
	// Nothing pending: answered at once (at the next frame).
	bt.send(t, map[string]any{"type": "mark", "name": "idle"})
	if ev := bt.next(t); ev["type"] != "mark" || ev["name"] != "idle" || ev["cleared"] != false {
		t.Fatalf("idle mark: %v", ev)
	}
	from := wc.rx.len()
	bt.send(t, map[string]any{"type": "text", "text": words(markFreqs, 20), "flush": true})
	bt.send(t, map[string]any{"type": "mark", "name": "a"})
	bt.send(t, map[string]any{"type": "text", "text": words(markFreqs, 2), "flush": true})
	bt.send(t, map[string]any{"type": "mark", "name": "b"})
	bt.send(t, map[string]any{"type": "text", "text": "never triggered "})
	bt.send(t, map[string]any{"type": "mark", "name": "u"})
	wc.rx.waitTone(t, from)
	bt.send(t, map[string]any{"type": "clear"})
	for _, name := range []string{"a", "b", "u"} {
		ev := bt.next(t, "speaking")
		if ev["type"] != "mark" || ev["name"] != name || ev["cleared"] != true {
			t.Fatalf("event %v, want mark %s cleared", ev, name)
		}
	}
	bt.send(t, map[string]any{"type": "text", "text": words(markFreqs, 1), "flush": true})
	bt.send(t, map[string]any{"type": "mark", "name": "c"})
	if ev := bt.next(t, "speaking", "done"); ev["type"] != "mark" || ev["name"] != "c" || ev["cleared"] != false {
		t.Fatalf("mark after the clear: %v", ev)
	}
}
