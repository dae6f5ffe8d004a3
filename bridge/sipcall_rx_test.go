package bridge

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/media"
)

// g711Words encodes frames 20 ms G.711 packets of a tone per word of
// wordFrames frames (wordHz), continuous in phase.
func g711Words(c media.Codec, frames, wordFrames int) [][]byte {
	pcm := make([]int16, media.G711FrameSamples)
	phase := 0.0
	var out [][]byte
	for k := range frames {
		w := k / wordFrames
		for i := range pcm {
			phase += 2 * math.Pi * wordHz(w) / media.G711SampleRate
			pcm[i] = int16(6000 * math.Sin(phase))
		}
		b := make([]byte, media.G711FrameSamples)
		media.EncodeG711(b, pcm, c)
		out = append(out, b)
	}
	return out
}

// playRTP sends a script from the SIP caller to the bridge's RTP port on
// the 20 ms wall-clock grid (absolute deadlines), audio on audioPT and key
// presses on 101, and returns when each audio frame was sent.
func (u *uac) playRTP(port int, audioPT uint8, items []sendItem, frames int) []time.Time {
	sent := make([]time.Time, frames)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for _, it := range items {
		if d := time.Until(start.Add(it.at)); d > 0 {
			timer.Reset(d)
			<-timer.C
		}
		pt := audioPT
		if it.dtmf {
			pt = 101
		}
		if it.frame >= 0 {
			sent[it.frame] = time.Now()
		}
		u.sendRTP(port, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: it.marker, SequenceNumber: it.seq, Timestamp: it.ts, SSRC: 4242}, Payload: it.payload})
	}
	return sent
}

// TestSIPCallerAudioTimeline is a SIP caller's audio through the call's
// receive loop, from the outside: a raw-UDP SIP caller sends a PCMU (then
// PCMA) tone per word with packets dropped, two swapped and one late, and
// RFC 4733 key presses (one whose end packets are lost); bots listening at
// 16 and 8 kHz get exactly 20 ms messages, continuous in time (every tone
// in its own slots, concealed slots in place and sounding like their
// word), the digits once each, and /metrics counts the loss, the late
// packet and the concealments (plc, never fec: G.711 has none) like a
// WebRTC call's.
func TestSIPCallerAudioTimeline(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecPCMU, media.CodecPCMA} {
		t.Run(codec.String(), func(t *testing.T) {
			b, bots, addr := sipBridge(t, nil)
			u := newUAC(t, addr)
			u.pcma = codec == media.CodecPCMA
			code, ok := u.invite()
			if code != 200 {
				t.Fatalf("INVITE answered %d:\n%s", code, ok)
			}
			port, pt := answeredPort(t, ok)
			if want := map[media.Codec]string{media.CodecPCMU: "0", media.CodecPCMA: "8"}[codec]; pt != want {
				t.Fatalf("answered payload type %s, want %s", pt, want)
			}
			id := bots.next(t).query.Get("call_id")
			bot16 := b.dialListen(t, id, 16000, false)
			bot8 := b.dialListen(t, id, 8000, false)
			b.waitBots(t, id, 3)

			const wordFrames, nWords = 10, 15
			frames := wordFrames * nWords
			drop, late, swap := []int{37, 38, 93}, []int{125}, []int{55}
			keys := []keyPress{
				{code: 1, frame: 20, updates: 4, marker: true},
				{code: 5, frame: 60, updates: 7},
				{code: 11, frame: 100, updates: 3, marker: true, endLost: true},
				{code: 9, frame: 130, updates: 4},
			}
			items := scriptAt(media.G711FrameSamples, g711Words(codec, frames, wordFrames), keys, drop, late, 150*time.Millisecond, swap)
			sent := u.playRTP(port, codec.PayloadType(), items, frames)

			tl := timeline{frames: frames, wordFrames: wordFrames, drop: drop, late: late, sent: sent}
			unplanned := int(b.scrape(t, "voicebridge_caller_packets_late_total")) - len(late)
			for _, bot := range []*listenBot{bot16, bot8} {
				tl.check(t, bot, unplanned)
			}
			checkKeys(t, []*listenBot{bot16, bot8}, keys)

			plc := b.scrape(t, `voicebridge_caller_frames_concealed_total{method="plc"}`)
			for _, c := range []struct {
				metric   string
				min, max float64
			}{
				{`voicebridge_caller_packets_received_total{kind="audio"}`, float64(frames - len(drop)), float64(frames)},
				{`voicebridge_caller_packets_received_total{kind="dtmf"}`, 4 + 7 + 3 + 4 + 9, 4 + 7 + 3 + 4 + 9},
				{`voicebridge_caller_packets_received_total{kind="other"}`, 0, 0},
				{`voicebridge_caller_packets_lost_total`, float64(len(drop)), float64(len(drop))},
				{`voicebridge_caller_packets_late_total`, float64(len(late)), math.Inf(1)},
				{`voicebridge_caller_frames_concealed_total{method="plc"}`, float64(len(drop) + len(late)), math.Inf(1)},
				{`voicebridge_caller_frames_concealed_total{method="fec"}`, 0, 0},
				{`voicebridge_dtmf_events_in_total`, float64(len(keys)), float64(len(keys))},
			} {
				if v := b.scrape(t, c.metric); v < c.min || v > c.max {
					t.Errorf("%s = %v, want %v..%v", c.metric, v, c.min, c.max)
				}
			}
			t.Logf("%s: lost %v, late %v, concealed (plc) %v, of which after the caller stopped %v",
				codec, b.scrape(t, "voicebridge_caller_packets_lost_total"), b.scrape(t, "voicebridge_caller_packets_late_total"),
				plc, plc-float64(len(drop)+len(late)+max(unplanned, 0)))
			u.bye()
		})
	}
}

// TestSIPCallerAudioLatency measures, from the outside, a SIP G.711 call's
// caller packet → bot socket latency: the UAC sends 600 packets of PCMU on
// the 20 ms grid, in order, and message k at a bot listening at 16 kHz is
// completed by packet k. The numbers are logged (speed targets are not
// asserted in unit tests); the test asserts every message arrived after
// its packet was sent.
func TestSIPCallerAudioLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const frames = 600
	b, bots, addr := sipBridge(t, nil)
	u := newUAC(t, addr)
	code, ok := u.invite()
	if code != 200 {
		t.Fatalf("INVITE answered %d:\n%s", code, ok)
	}
	port, _ := answeredPort(t, ok)
	id := bots.next(t).query.Get("call_id")
	bot := b.dialListen(t, id, 16000, false)
	b.waitBots(t, id, 2)
	items := scriptAt(media.G711FrameSamples, g711Words(media.CodecPCMU, frames, 50), nil, nil, nil, 0, nil)
	for i := range items {
		items[i].seq = uint16(i)
	}
	sent := u.playRTP(port, 0, items, frames)
	_, at := bot.waitFrames(t, frames)
	lat := make([]time.Duration, frames)
	for k := range frames {
		lat[k] = at[k].Sub(sent[k])
		if lat[k] < 0 {
			t.Fatalf("message %d came %v before its packet was sent", k, -lat[k])
		}
	}
	slices.Sort(lat)
	t.Logf("SIP PCMU caller packet → bot socket (16 kHz) over %d frames: p50 %v, p99 %v, max %v; concealed %v",
		frames, percentile(lat, 50), percentile(lat, 99), lat[frames-1], b.scrape(t, "voicebridge_caller_frames_concealed_total"))
	u.bye()
}
