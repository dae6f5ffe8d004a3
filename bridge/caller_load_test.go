package bridge

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestSlowListenerDropsOldest: a bot that stops reading loses its oldest
// audio (counted), keeps its socket and its events, and holds up neither
// the call nor the other bot.
func TestSlowListenerDropsOldest(t *testing.T) {
	b := newBridge(t, Config{})
	id, tk, _ := b.createTalkCall(t)
	fast := b.dialListen(t, id, 16000, false)
	slow := b.dialListen(t, id, 48000, true)
	b.waitBots(t, id, 2)

	const frames = 250 // 5 s: the slow bot's kernel buffers and queue hold about 1.7 s at 48 kHz
	key := keyPress{code: 7, frame: 200, updates: 3, marker: true}
	tk.play(t, script(toneWords(t, frames, 10), []keyPress{key}, nil, nil, 0, nil), frames)

	// The fast bot has everything, its digit included, while the slow one
	// still reads nothing.
	fast.waitFrames(t, frames)
	if ev, ok := fast.nextEvent(t, "dtmf", waitTimeout); !ok || ev["digit"] != "7" {
		t.Fatalf("fast bot: dtmf %v", ev)
	}
	dropped := b.scrape(t, "voicebridge_caller_audio_frames_dropped_total")
	if dropped == 0 {
		t.Fatal("nothing dropped for a bot that read nothing for 5 s")
	}
	slow.resume()
	if ev, ok := slow.nextEvent(t, "dtmf", waitTimeout); !ok || ev["digit"] != "7" {
		t.Fatalf("slow bot: dtmf %v", ev)
	}
	// It still gets audio: it was not kicked, and what it gets now is
	// recent (the call keeps concealing after the talker stopped).
	got, _ := slow.waitFrames(t, 1)
	more, _ := slow.waitFrames(t, len(got)+50)
	if len(more) <= len(got) {
		t.Fatal("the slow bot gets no more audio")
	}
	if uint64(len(got)) >= frames {
		t.Errorf("the slow bot read %d frames of a %d-frame call after stalling; nothing was dropped", len(got), frames)
	}
	t.Logf("slow bot: %v frames dropped while it stalled; %d read by the time its digit came", dropped, len(got))
}

// TestCallerDTMFManyDigits measures detection over 120 key presses: the
// marker bit omitted on a third of them, every tenth with its end packets
// lost, repeated digits, end packets sent three times.
func TestCallerDTMFManyDigits(t *testing.T) {
	b := newBridge(t, Config{})
	id, tk, _ := b.createTalkCall(t)
	bot := b.dialListen(t, id, 16000, false)
	b.waitBots(t, id, 1)

	const n = 120
	rng := rand.New(rand.NewPCG(12, 34))
	var want []byte
	var items []sendItem
	at := time.Duration(0)
	ts := uint32(777)
	var seq uint16 = 42
	noMarker, endLost := 0, 0
	for i := range n {
		code := byte(rng.IntN(16))
		if i%7 == 3 && i > 0 {
			code = want[i-1] // the same key twice in a row
		}
		want = append(want, code)
		k := keyPress{code: code, updates: 2 + rng.IntN(4), marker: i%3 != 0, endLost: i%10 == 9}
		if !k.marker {
			noMarker++
		}
		if k.endLost {
			endLost++
		}
		for _, it := range keyPackets(k, ts, 0) {
			it.at, it.seq = at, seq
			items = append(items, it)
			at += 2 * time.Millisecond
			seq++
		}
		ts += 48000 / 5 // 200 ms apart on the RTP clock
		at += 4 * time.Millisecond
	}
	tk.play(t, items, 0)

	var got []byte
	for range n {
		ev, ok := bot.nextEvent(t, "dtmf", waitTimeout)
		if !ok {
			break
		}
		d, _ := ev["digit"].(string)
		got = append(got, byte(slices.Index([]byte("0123456789*#ABCD"), d[0])))
	}
	if ev, ok := bot.nextEvent(t, "dtmf", 500*time.Millisecond); ok {
		t.Errorf("extra dtmf event %v", ev)
		got = append(got, 255)
	}
	missed, doubled := diffCounts(want, got)
	t.Logf("DTMF in: %d presses (%d without marker, %d with end packets lost): %d received, %d missed, %d doubled",
		n, noMarker, endLost, len(got), missed, doubled)
	if !slices.Equal(want, got) {
		t.Fatalf("digits differ: want %v, got %v", want, got)
	}
}

// diffCounts returns how many of want are missing from got and how many of
// got are extra, by a longest common subsequence.
func diffCounts(want, got []byte) (missed, extra int) {
	l := make([][]int, len(want)+1)
	for i := range l {
		l[i] = make([]int, len(got)+1)
	}
	for i := len(want) - 1; i >= 0; i-- {
		for j := len(got) - 1; j >= 0; j-- {
			if want[i] == got[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	return len(want) - l[0][0], len(got) - l[0][0]
}

// TestCallerAudioLatency measures, on a clean loopback network, how long a
// caller frame takes from the talker's send to the bot's read (outside:
// includes SRTP, the jitter buffer, decoding and the WebSocket) and from
// the packet's arrival at the bridge to the socket write (the bridge's
// histogram). It reports and asserts no timing (speed is for benchmarks):
// VOICEBRIDGE_LATENCY_FRAMES sets the length (default 250 frames, 5 s).
func TestCallerAudioLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s of real-time audio")
	}
	frames := 250
	if v, err := strconv.Atoi(os.Getenv("VOICEBRIDGE_LATENCY_FRAMES")); err == nil && v > 0 {
		frames = v
	}
	b := newBridge(t, Config{})
	id, tk, _ := b.createTalkCall(t)
	bot := b.dialListen(t, id, 16000, false)
	b.waitBots(t, id, 1)

	sent := tk.play(t, script(toneWords(t, frames, 10), nil, nil, nil, 0, nil), frames)
	_, at := bot.waitFrames(t, frames)
	lat := make([]time.Duration, 0, frames)
	for k := range frames {
		lat = append(lat, at[k].Sub(sent[k]))
	}
	slices.Sort(lat)
	t.Logf("caller audio, talker send -> bot read, %d frames: p50 %v, p99 %v, max %v",
		frames, percentile(lat, 50).Round(10*time.Microsecond), percentile(lat, 99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	cnt := b.scrape(t, "voicebridge_caller_audio_latency_seconds_count")
	for _, le := range []string{"0.0005", "0.001", "0.002", "0.005", "0.01", "0.02", "0.04"} {
		v := b.scrape(t, `voicebridge_caller_audio_latency_seconds_bucket{le="`+le+`"}`)
		t.Logf("bridge histogram, packet arrival -> socket write: %5.1f%% within %s s", 100*v/cnt, le)
	}
}
