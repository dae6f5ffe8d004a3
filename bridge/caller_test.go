package bridge

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

// script builds the talker's packets: frames of tone words, the key
// presses, and the impairments (audio frames dropped, sent late by lateBy,
// and pairs sent swapped), at Opus's clock.
func script(words [][]byte, keys []keyPress, drop, late []int, lateBy time.Duration, swap []int) []sendItem {
	return scriptAt(media.FrameSamples, words, keys, drop, late, lateBy, swap)
}

// scriptAt is script for a clock of step units per 20 ms frame (160 for
// G.711).
func scriptAt(step int, words [][]byte, keys []keyPress, drop, late []int, lateBy time.Duration, swap []int) []sendItem {
	const ts0 = 123456
	var items []sendItem
	for k, p := range words {
		items = append(items, sendItem{at: time.Duration(k) * media.FrameDuration, ts: ts0 + uint32(k*step), marker: k == 0, payload: p, frame: k})
	}
	for _, k := range keys {
		items = append(items, keyPacketsAt(step, k, ts0, 0)...)
	}
	slices.SortStableFunc(items, func(a, b sendItem) int { return int(a.at - b.at) })
	for i := range items {
		items[i].seq = uint16(1000 + i) // one sequence for both payload types
	}
	out := items[:0]
	for _, it := range items {
		if it.frame >= 0 && slices.Contains(drop, it.frame) {
			continue
		}
		if it.frame >= 0 && slices.Contains(late, it.frame) {
			it.at += lateBy
		}
		if it.frame >= 0 && slices.Contains(swap, it.frame) {
			it.at += media.FrameDuration + 2*time.Millisecond // after the next frame
		}
		out = append(out, it)
	}
	slices.SortStableFunc(out, func(a, b sendItem) int { return int(a.at - b.at) })
	return out
}

// TestCallerAudioAndDTMF is the two-way call end to end: a real Pion peer
// offers sendrecv and sends a tone per word (Opus, with packets dropped,
// reordered and late) and RFC 4733 key presses on the same SSRC; two bots
// listen at 16 and 8 kHz. Their PCM must be continuous in time (every tone
// in its own 20 ms slots) and the digits must arrive once each, in order.
func TestCallerAudioAndDTMF(t *testing.T) {
	b := newBridge(t, Config{})
	id, tk, answer := b.createTalkCall(t)
	for _, want := range []string{"a=sendrecv", "telephone-event/48000"} {
		if !strings.Contains(answer, want) {
			t.Fatalf("the answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "telephone-event/8000") {
		t.Fatalf("the answer takes telephone-event at 8000 Hz beside Opus:\n%s", answer)
	}
	bot16 := b.dialListen(t, id, 16000, false)
	bot8 := b.dialListen(t, id, 8000, false)
	plain := b.dialBot(t, id) // no listen: events only, never a binary message
	b.waitBots(t, id, 3)

	const wordFrames, nWords = 10, 15
	frames := wordFrames * nWords
	drop, late, swap := []int{37, 38, 90}, []int{120}, []int{50}
	keys := []keyPress{
		{code: 1, frame: 20, updates: 4, marker: true},
		{code: 5, frame: 60, updates: 7, marker: false},
		{code: 11, frame: 100, updates: 3, marker: true, endLost: true},
		{code: 9, frame: 130, updates: 4, marker: false},
	}
	sent := tk.play(t, script(toneWords(t, frames, wordFrames), keys, drop, late, 150*time.Millisecond, swap), frames)

	tl := timeline{frames: frames, wordFrames: wordFrames, drop: drop, late: late, sent: sent}
	// On a loaded machine a packet may come later than the jitter buffer
	// waits: see timeline.check.
	unplanned := int(b.scrape(t, "voicebridge_caller_packets_late_total")) - len(late)
	for _, bot := range []*listenBot{bot16, bot8} {
		tl.check(t, bot, unplanned)
	}
	checkKeys(t, []*listenBot{bot16, bot8}, keys)
	for _, k := range keys {
		ev := plain.expect(t, "dtmf")
		if ev["digit"] != string("0123456789*#ABCD"[k.code]) {
			t.Errorf("bot without listen: dtmf %v, want digit %q", ev, "0123456789*#ABCD"[k.code])
		}
	}
	for _, c := range []struct {
		metric string
		min    float64
	}{
		{`voicebridge_caller_packets_received_total{kind="audio"}`, float64(frames - len(drop))},
		{`voicebridge_caller_packets_received_total{kind="dtmf"}`, 4 + 7 + 3 + 4 + 9},
		{`voicebridge_caller_packets_lost_total`, float64(len(drop))},
		{`voicebridge_caller_packets_late_total`, 1},
		{`voicebridge_caller_frames_concealed_total{method="plc"}`, 1},
		{`voicebridge_caller_frames_concealed_total{method="fec"}`, 1},
		{`voicebridge_caller_audio_frames_sent_total`, 2 * float64(frames)},
		{`voicebridge_dtmf_events_in_total`, 4},
	} {
		if v := b.scrape(t, c.metric); v < c.min {
			t.Errorf("%s = %v, want at least %v", c.metric, v, c.min)
		}
	}
	if v := b.scrape(t, `voicebridge_caller_packets_received_total{kind="other"}`); v != 0 {
		t.Errorf("%v packets counted as other", v)
	}
	t.Logf("lost %v, late %v, concealed %v (fec %v)", b.scrape(t, "voicebridge_caller_packets_lost_total"), b.scrape(t, "voicebridge_caller_packets_late_total"),
		b.scrape(t, "voicebridge_caller_frames_concealed_total"), b.scrape(t, `voicebridge_caller_frames_concealed_total{method="fec"}`))
	if v := b.scrape(t, `voicebridge_dtmf_events_in_total`); v != 4 {
		t.Errorf("dtmf events in: %v, want 4", v)
	}
}

// TestCallerAudioG711WebRTC: a WebRTC caller on PCMU (a Pion peer offering
// it first) goes through the same receive loop as a SIP caller: a tone per
// word with packets dropped, swapped and late reaches bots at 16 and
// 8 kHz time-continuous, concealed as plc, and its key presses at 8000 Hz
// reach them once each.
func TestCallerAudioG711WebRTC(t *testing.T) {
	b := newBridge(t, Config{})
	id, tk, answer := b.createTalkCallWith(t, newG711Talker(t, media.CodecPCMU))
	for _, want := range []string{"a=sendrecv", "PCMU/8000", "telephone-event/8000"} {
		if !strings.Contains(answer, want) {
			t.Fatalf("the answer lacks %q:\n%s", want, answer)
		}
	}
	bot16 := b.dialListen(t, id, 16000, false)
	bot8 := b.dialListen(t, id, 8000, false)
	b.waitBots(t, id, 2)

	const wordFrames, nWords = 10, 12
	frames := wordFrames * nWords
	drop, late, swap := []int{37, 38, 93}, []int{105}, []int{55}
	keys := []keyPress{{code: 3, frame: 20, updates: 4, marker: true}, {code: 10, frame: 70, updates: 5}}
	items := scriptAt(media.G711FrameSamples, g711Words(media.CodecPCMU, frames, wordFrames), keys, drop, late, 150*time.Millisecond, swap)
	sent := tk.play(t, items, frames)

	tl := timeline{frames: frames, wordFrames: wordFrames, drop: drop, late: late, sent: sent}
	unplanned := int(b.scrape(t, "voicebridge_caller_packets_late_total")) - len(late)
	for _, bot := range []*listenBot{bot16, bot8} {
		tl.check(t, bot, unplanned)
	}
	checkKeys(t, []*listenBot{bot16, bot8}, keys)
	if v := b.scrape(t, `voicebridge_caller_frames_concealed_total{method="plc"}`); v < float64(len(drop)+len(late)) {
		t.Errorf("plc concealments %v, want at least %d", v, len(drop)+len(late))
	}
	for _, m := range []string{`voicebridge_caller_frames_concealed_total{method="fec"}`, `voicebridge_caller_packets_received_total{kind="other"}`} {
		if v := b.scrape(t, m); v != 0 {
			t.Errorf("%s = %v, want 0", m, v)
		}
	}
}

// waitBots waits until the call has n bot sockets.
func (b *testBridge) waitBots(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		c, err := b.srv.lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		if c.info().BotSockets >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call has %d bot sockets, want %d", c.info().BotSockets, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestListenRejectsBadValue: listen takes the four PCM formats only.
func TestListenRejectsBadValue(t *testing.T) {
	b := newBridge(t, Config{})
	c := b.createCall(t, "")
	for _, v := range []string{"pcm_22050", "mulaw_8000", "", "PCM_16000"} {
		resp, body := b.do(t, "GET", "/v1/calls/"+c.id+"/ws?listen="+v, "", nil,
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		wantError(t, resp, body, http.StatusBadRequest, "invalid_field")
	}
}

func TestOfferSendsAudio(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	const audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
	for _, c := range []struct {
		sdp  string
		want bool
	}{
		{head + audio + "a=sendrecv\r\n", true},
		{head + audio, true}, // no direction: sendrecv (RFC 8866 §6.7)
		{head + audio + "a=recvonly\r\n", false},
		{head + strings.Replace(audio, "m=audio 9", "m=audio 0", 1) + "a=sendrecv\r\n" + audio + "a=recvonly\r\n", false},
		{"not sdp", false},
	} {
		if got := offerSendsAudio(c.sdp); got != c.want {
			t.Errorf("offerSendsAudio(%q) = %v, want %v", c.sdp, got, c.want)
		}
	}
}

// timeline is what a talker sent: frames 20 ms packets of a tone per word
// of wordFrames (wordHz), with drop and late frames, and when each frame
// was sent (zero: never).
type timeline struct {
	frames, wordFrames int
	drop, late         []int
	sent               []time.Time
}

// check asserts a listening bot's stream: exact 20 ms messages, more than
// the caller sent (the stream keeps time after the caller stops), none
// ahead of its audio (message k of a frame sent on time cannot come before
// the talker sent it, unless an unplanned late packet had it concealed),
// every word's tone in its own slots and a concealed
// slot still sounding like its word. On a loaded machine a packet may come
// later than the jitter buffer waits: it is concealed (counted late) and
// its slot holds concealment instead of its tone; each such unplanned
// packet excuses its slot and the two after it (the decoder's recovery). A
// message missing or extra would shift every word after it, far more than
// that.
func (tl timeline) check(t *testing.T, bot *listenBot, unplanned int) {
	t.Helper()
	bad := map[int]bool{}
	for _, f := range slices.Concat(tl.drop, tl.late) {
		bad[f], bad[f+1] = true, true // concealed, and the decoder's recovery
	}
	got, at := bot.waitFrames(t, tl.frames+5)
	// The talker sends frame j at start+20·j ms or later, so the caller's
	// timeline cannot start before origin: message k is not due before
	// origin+20·k ms, even when it is concealment after the caller stopped.
	origin := tl.sent[0]
	for j, s := range tl.sent {
		if o := s.Add(-time.Duration(j) * media.FrameDuration); !s.IsZero() && o.Before(origin) {
			origin = o
		}
	}
	var early []string
	for k, fr := range got {
		if len(fr) != bot.rate/50*2 {
			t.Fatalf("%d Hz: message %d has %d bytes, want 20 ms (%d)", bot.rate, k, len(fr), bot.rate/50*2)
		}
		if k < tl.frames && !tl.sent[k].IsZero() && !slices.Contains(tl.late, k) && at[k].Before(tl.sent[k]) {
			// Only a concealment can: the packet came later than the
			// jitter buffer waited (an unplanned late packet).
			early = append(early, fmt.Sprintf("message %d came %v before its audio was sent", k, tl.sent[k].Sub(at[k])))
		}
		if k >= tl.frames && at[k].Before(origin.Add(time.Duration(k)*media.FrameDuration)) {
			t.Fatalf("%d Hz: message %d came %v after the caller's timeline started, before its time", bot.rate, k, at[k].Sub(origin))
		}
	}
	if len(early) > max(unplanned, 0) {
		t.Fatalf("%d Hz: %d messages ahead of their audio (%d unplanned late packets):\n%s", bot.rate, len(early), max(unplanned, 0), strings.Join(early, "\n"))
	}
	nWords := tl.frames / tl.wordFrames
	var wrong []string
	for k := range tl.frames {
		w := k / tl.wordFrames
		if bad[k] {
			continue
		}
		x := pcm16(got[k])
		if p := goertzel(x, wordHz(w), float64(bot.rate)); p < 0.5 {
			wrong = append(wrong, fmt.Sprintf("message %d (word %d) holds %.2f of its energy at its %v Hz", k, w, p, wordHz(w)))
			continue
		}
		for _, o := range []int{w - 1, w + 1} {
			if o >= 0 && o < nWords {
				if p := goertzel(x, wordHz(o), float64(bot.rate)); p > 0.2 {
					wrong = append(wrong, fmt.Sprintf("message %d (word %d) holds %.2f of its energy at word %d's %v Hz", k, w, p, o, wordHz(o)))
					break
				}
			}
		}
	}
	// Concealed slots are still in place and sound like their word.
	for _, k := range tl.drop {
		if p := goertzel(pcm16(got[k]), wordHz(k/tl.wordFrames), float64(bot.rate)); p < 0.3 {
			wrong = append(wrong, fmt.Sprintf("concealed message %d holds %.2f at its word's tone", k, p))
		}
	}
	if len(wrong) > 3*max(unplanned, 0) {
		t.Errorf("%d Hz: %d messages out of place (%d unplanned late packets excuse %d):\n%s",
			bot.rate, len(wrong), max(unplanned, 0), 3*max(unplanned, 0), strings.Join(wrong, "\n"))
	} else if len(wrong) > 0 {
		t.Logf("%d Hz: %d messages hold concealment for %d unplanned late packets", bot.rate, len(wrong), unplanned)
	}
}

// checkKeys asserts the digits reached each bot once each, in order, with
// their durations, and nothing more.
func checkKeys(t *testing.T, bots []*listenBot, keys []keyPress) {
	t.Helper()
	for _, bot := range bots {
		for _, k := range keys {
			ev, ok := bot.nextEvent(t, "dtmf", waitTimeout)
			if !ok {
				t.Fatalf("%d Hz bot: no dtmf event for key %d", bot.rate, k.code)
			}
			if ev["digit"] != string("0123456789*#ABCD"[k.code]) || ev["duration_ms"] != float64(k.wantMS()) {
				t.Errorf("%d Hz bot: dtmf %v, want digit %q, %d ms", bot.rate, ev, "0123456789*#ABCD"[k.code], k.wantMS())
			}
		}
		if ev, ok := bot.nextEvent(t, "dtmf", 400*time.Millisecond); ok {
			t.Errorf("%d Hz bot: extra dtmf event %v", bot.rate, ev)
		}
	}
}
