package bridge

import (
	"encoding/binary"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// heardPkt is a packet the peer received, with the Opus packets' decoded RMS.
type heardPkt struct {
	rtp.Header
	payload []byte
	rms     float64
}

// hearer collects what a talker receives from the bridge.
type hearer struct {
	mu     sync.Mutex
	pkts   []heardPkt // guarded by mu
	notify chan struct{}
}

func (h *hearer) snapshot() []heardPkt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]heardPkt(nil), h.pkts...)
}

// waitUntil waits until cond holds on the packets received so far.
func (h *hearer) waitUntil(t *testing.T, what string, cond func([]heardPkt) bool) []heardPkt {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if ps := h.snapshot(); cond(ps) {
			return ps
		}
		select {
		case <-h.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// newDTMFCall starts a two-way call with a talker (it negotiates
// telephone-event/48000 as PT 110, and also offers it at 8000) that
// records every packet the bridge sends, decoding Opus (PT 111).
func newDTMFCall(t *testing.T) (*testBridge, string, *hearer) {
	t.Helper()
	b := newBridge(t, Config{}, seams{ttsServer: ttsserver.ServerConfig{}})
	tk := newTalker(t)
	h := &hearer{notify: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	tk.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		dec, err := opus.NewDecoder(48000, 1)
		if err != nil {
			t.Error(err)
			return
		}
		pcm := make([]int16, 5760)
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			hp := heardPkt{Header: p.Header, payload: append([]byte(nil), p.Payload...)}
			if p.PayloadType == 111 {
				n, err := dec.Decode(p.Payload, pcm)
				if err != nil {
					t.Errorf("decode: %v", err)
					return
				}
				var e float64
				for _, v := range pcm[:n] {
					e += float64(v) * float64(v)
				}
				hp.rms = math.Sqrt(e / float64(max(n, 1)))
			}
			h.mu.Lock()
			h.pkts = append(h.pkts, hp)
			h.mu.Unlock()
			select {
			case h.notify <- struct{}{}:
			case <-stop:
				return
			default:
			}
		}
	})
	t.Cleanup(func() { close(stop); _ = tk.pc.Close(); wg.Wait() })
	offer, err := tk.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(tk.pc)
	if err := tk.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	resp, body := b.do(t, "POST", "/v1/calls?voice_id="+ttsserver.TestTonesVoice, "application/sdp", []byte(tk.pc.LocalDescription().SDP))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if err := tk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tk.connected, "the talker to connect")
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	b.waitState(t, id, stateConnected)
	return b, id, h
}

// wireDTMF is one event parsed from the wire.
type wireDTMF struct {
	digit    byte
	ts       uint32
	first    int // index of its first packet
	durs     []int
	ends     int
	volume   byte
	markerOK bool
}

const dtmfDigits = "0123456789*#ABCD"

// parseEvents groups the telephone-event packets (PT pt) of ps into events.
func parseEvents(t *testing.T, ps []heardPkt, pt uint8) []wireDTMF {
	t.Helper()
	var out []wireDTMF
	for i, p := range ps {
		if p.PayloadType != pt {
			continue
		}
		if len(p.payload) != 4 {
			t.Fatalf("telephone-event payload of %d bytes", len(p.payload))
		}
		n := len(out)
		if n == 0 || out[n-1].ts != p.Timestamp {
			out = append(out, wireDTMF{digit: dtmfDigits[p.payload[0]], ts: p.Timestamp, first: i, markerOK: p.Marker, volume: p.payload[1] & 0x3f})
			n++
		} else if p.Marker {
			out[n-1].markerOK = false
		}
		e := &out[n-1]
		e.durs = append(e.durs, int(binary.BigEndian.Uint16(p.payload[2:])))
		if p.payload[1]&0x80 != 0 {
			e.ends++
		}
	}
	return out
}

// TestWireDTMFOut: digits from POST /dtmf and from the bot's dtmf message
// reach a real Pion peer as RFC 4733 events on the audio SSRC and
// sequence, with the negotiated telephone-event payload type (110), in
// order, on the audio's 20 ms timestamp grid, the marker on each event's
// first packet, durations growing by 960 to the asked duration, three end
// packets, volume 10; speech held meanwhile resumes after them.
func TestWireDTMFOut(t *testing.T) {
	b, id, h := newDTMFCall(t)
	h.waitUntil(t, "audio", func(ps []heardPkt) bool { return len(ps) >= 5 })
	resp, body := b.do(t, "POST", "/v1/calls/"+id+"/text", "application/json",
		jsonBody(t, map[string]any{"text": words(markFreqs, 10), "flush": true}))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("text: %d %s", resp.StatusCode, body)
	}
	h.waitUntil(t, "speech", func(ps []heardPkt) bool { return len(ps) > 0 && ps[len(ps)-1].rms > toneLevel })
	resp, body = b.do(t, "POST", "/v1/calls/"+id+"/dtmf", "application/json",
		jsonBody(t, map[string]any{"digits": "12#", "duration_ms": 100, "gap_ms": 40}))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("dtmf: %d %s", resp.StatusCode, body)
	}
	bt := b.dialBot(t, id)
	bt.send(t, map[string]any{"type": "dtmf", "digits": "D", "duration_ms": 60})
	ps := h.waitUntil(t, "four digits and speech after them", func(ps []heardPkt) bool {
		ev := parseEvents(t, ps, 110)
		if len(ev) < 4 || ev[3].ends < 3 {
			return false
		}
		for _, p := range ps[ev[3].first:] {
			if p.PayloadType == 111 && p.rms > toneLevel {
				return true
			}
		}
		return false
	})
	ev := parseEvents(t, ps, 110)
	want := []struct {
		digit  byte
		frames int
	}{{'1', 5}, {'2', 5}, {'#', 5}, {'D', 3}}
	if len(ev) != len(want) {
		t.Fatalf("%d events, want %d", len(ev), len(want))
	}
	audio := ps[0]
	for i := 1; i < len(ps); i++ {
		if ps[i].SSRC != audio.SSRC {
			t.Fatalf("packet %d: SSRC %x, the audio's is %x", i, ps[i].SSRC, audio.SSRC)
		}
		if ps[i].SequenceNumber != ps[i-1].SequenceNumber+1 {
			t.Logf("packet %d: seq %d after %d (loss or reorder on loopback)", i, ps[i].SequenceNumber, ps[i-1].SequenceNumber)
		}
	}
	for i, w := range want {
		e := ev[i]
		if e.digit != w.digit || !e.markerOK || e.volume != 10 || e.ends != 3 {
			t.Fatalf("event %d: %+v, want digit %c, marker on first only, volume 10, 3 ends", i, e, w.digit)
		}
		if d := e.ts - audio.Timestamp; d%960 != 0 {
			t.Fatalf("event %d: timestamp %d off the audio's 960 grid", i, e.ts)
		}
		if len(e.durs) != w.frames+2 {
			t.Fatalf("event %d: %d packets, want %d", i, len(e.durs), w.frames+2)
		}
		for j, d := range e.durs {
			if d != min(j+1, w.frames)*960 {
				t.Fatalf("event %d: durations %v", i, e.durs)
			}
		}
		// Between this event's packets only this event's packets: speech held.
		for j := e.first; j < e.first+len(e.durs); j++ {
			if ps[j].PayloadType != 110 {
				t.Fatalf("event %d: packet of type %d inside it", i, ps[j].PayloadType)
			}
		}
	}
}

// TestDTMFOutRefused: a peer without telephone-event gets 409
// dtmf_not_negotiated; bad digits or timing get 400 on HTTP and an error
// event on the bot socket.
func TestDTMFOutRefused(t *testing.T) {
	b, id, _ := newDTMFCall(t)
	for _, body := range []map[string]any{
		{"digits": "12x"}, {"digits": ""}, {"digits": "1", "duration_ms": 39}, {"digits": "1", "gap_ms": 2001},
		{"digits": strings.Repeat("1", 65)},
	} {
		resp, rb := b.do(t, "POST", "/v1/calls/"+id+"/dtmf", "application/json", jsonBody(t, body))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(rb), "invalid_field") {
			t.Errorf("dtmf %v: %d %s", body, resp.StatusCode, rb)
		}
	}
	bt := b.dialBot(t, id)
	bt.send(t, map[string]any{"type": "dtmf", "digits": "E"})
	if ev := bt.next(t); ev["type"] != "error" || ev["code"] != "invalid_field" {
		t.Fatalf("bot dtmf E: %v", ev)
	}

	wc := newWireCall(t, "", ttsserver.ServerConfig{}, markFreqs) // Pion's default codecs: no telephone-event
	resp, rb := wc.b.do(t, "POST", "/v1/calls/"+wc.id+"/dtmf", "application/json", jsonBody(t, map[string]any{"digits": "1"}))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(rb), "dtmf_not_negotiated") {
		t.Fatalf("dtmf without telephone-event: %d %s", resp.StatusCode, rb)
	}
}
