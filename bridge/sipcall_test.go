package bridge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/bridge/sip"
	"github.com/voicebridge/voicebridge/media"
)

// sipBridge starts a bridge answering SIP on a loopback UDP port with a
// test bot server behind -bot-url.
func sipBridge(t *testing.T, tweak func(*Config)) (*testBridge, *sipBotServer, string) {
	t.Helper()
	bots := newSIPBotServer(t)
	cfg := Config{SIPListen: "udp:127.0.0.1:0", BotURL: bots.url}
	if tweak != nil {
		tweak(&cfg)
	}
	b := newBridge(t, cfg)
	addrs := b.srv.SIPAddrs()
	if len(addrs) == 0 {
		t.Fatal("no SIP listen address")
	}
	return b, bots, addrs[0].Addr
}

// sipCallInfo is GET /v1/calls/{id} of a SIP call.
type sipCallInfo struct {
	State       string `json:"state"`
	Codec       string `json:"codec"`
	CloseReason string `json:"close_reason"`
	SIP         *struct {
		CallID string `json:"call_id"`
		From   string `json:"from"`
		To     string `json:"to"`
	} `json:"sip"`
}

func (b *testBridge) sipInfo(t *testing.T, id string) sipCallInfo {
	t.Helper()
	resp, body := b.do(t, http.MethodGet, "/v1/calls/"+id, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	var info sipCallInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// answeredPort is the bridge's RTP port from a 200 OK's SDP.
func answeredPort(t *testing.T, ok string) (port int, pt string) {
	t.Helper()
	m := mAudioRe.FindStringSubmatch(ok)
	if m == nil {
		t.Fatalf("no m=audio in the answer:\n%s", ok)
	}
	port, _ = strconv.Atoi(m[1])
	return port, m[2]
}

// TestSIPCallToBot is a whole SIP call: INVITE → the bot's socket (with
// call_id, from, to, listen) → 200 OK → ACK → the bot's text spoken as
// paced PCMU on the wire → the caller's audio and a key press reach the
// bot → the caller's BYE → the bot's "closed" with reason hangup.
func TestSIPCallToBot(t *testing.T) {
	b, bots, addr := sipBridge(t, nil)
	u := newUAC(t, addr)
	code, ok := u.invite()
	if code != 200 {
		t.Fatalf("INVITE answered %d:\n%s", code, ok)
	}
	bot := bots.next(t)
	id := bot.query.Get("call_id")
	if id == "" || bot.query.Get("listen") != "pcm_16000" || !strings.Contains(bot.query.Get("from"), "alice") || !strings.Contains(bot.query.Get("to"), "bot@") {
		t.Fatalf("bot dialed with query %v", bot.query)
	}
	port, pt := answeredPort(t, ok)
	if pt != "0" {
		t.Fatalf("answered payload type %s, want 0 (PCMU)", pt)
	}
	info := b.sipInfo(t, id)
	if info.Codec != "pcmu" || info.SIP == nil || info.SIP.CallID != u.callID || !strings.Contains(info.SIP.From, "alice") {
		t.Fatalf("GET: %+v", info)
	}

	// Speech: the bot's text comes out as PCMU frames with energy.
	bot.send(t, map[string]any{"type": "text", "text": "hello there from the bot ", "flush": true})
	bot.expect(t, "speaking")
	bot.expect(t, "done")
	pk := u.packets()
	speech := 0
	for i, p := range pk {
		if p.hdr.PayloadType != 0 || len(p.payload) != 160 {
			t.Fatalf("packet %d: PT %d, %d bytes; want PCMU 160", i, p.hdr.PayloadType, len(p.payload))
		}
		if i > 0 {
			if p.hdr.SequenceNumber != pk[i-1].hdr.SequenceNumber+1 {
				t.Fatalf("packet %d: sequence %d after %d", i, p.hdr.SequenceNumber, pk[i-1].hdr.SequenceNumber)
			}
			if d := p.hdr.Timestamp - pk[i-1].hdr.Timestamp; d%160 != 0 || d == 0 {
				t.Fatalf("packet %d: timestamp step %d", i, d)
			}
		}
		if rmsPCMU(p.payload) > 300 {
			speech++
		}
	}
	pe := pacingErrors(pk, 8000)
	t.Logf("G.711 pacing at the receiver over %d packets: |arrival − grid| p50 %v, p99 %v, max %v",
		len(pk), percentile(pe, 50), percentile(pe, 99), pe[len(pe)-1])
	if speech < 25 { // five words of the embedded TTS: well over half a second
		t.Fatalf("%d speech frames of %d packets", speech, len(pk))
	}
	if st := b.sipInfo(t, id); st.State != "connected" {
		t.Fatalf("state %q", st.State)
	}

	// Caller audio: 1 kHz in PCMU, at 20 ms, reaches the bot at 16 kHz.
	seq, ts := uint16(100), uint32(0)
	tone := make([]int16, 160)
	payload := make([]byte, 160)
	for k := range 25 {
		for i := range tone {
			tone[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(k*160+i)/8000))
		}
		media.EncodeG711(payload, tone, media.CodecPCMU)
		u.sendRTP(port, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: 77}, Payload: payload})
		seq++
		ts += 160
		time.Sleep(20 * time.Millisecond)
	}
	loud := 0
	deadline := time.After(waitTimeout)
	for loud < 5 {
		select {
		case f := <-bot.audio:
			if len(f) != 640 {
				t.Fatalf("caller audio frame of %d bytes, want 640 (20 ms at 16 kHz)", len(f))
			}
			var e float64
			for i := 0; i < len(f); i += 2 {
				v := float64(int16(binary.LittleEndian.Uint16(f[i:])))
				e += v * v
			}
			if math.Sqrt(e/320) > 2000 {
				loud++
			}
		case <-deadline:
			t.Fatalf("only %d loud caller audio frames reached the bot", loud)
		}
	}

	// A key press (RFC 4733: digit 5, three end packets).
	for i, dur := range []uint16{160, 320, 480, 640, 640, 640} {
		end := byte(0)
		if i >= 3 {
			end = 0x80
		}
		u.sendRTP(port, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, Marker: i == 0, SequenceNumber: seq, Timestamp: ts, SSRC: 77},
			Payload: []byte{5, end | 10, byte(dur >> 8), byte(dur)}})
		seq++
	}
	ev := bot.expect(t, "dtmf")
	if ev["digit"] != "5" {
		t.Fatalf("dtmf event %v", ev)
	}

	u.bye()
	if ev := bot.expect(t, "closed"); ev["reason"] != "hangup" {
		t.Fatalf("closed: %v", ev)
	}
}

// TestSIPDeleteSendsBye: DELETE /v1/calls/{id} of a SIP call sends BYE.
func TestSIPDeleteSendsBye(t *testing.T) {
	b, bots, addr := sipBridge(t, nil)
	u := newUAC(t, addr)
	if code, m := u.invite(); code != 200 {
		t.Fatalf("INVITE answered %d:\n%s", code, m)
	}
	bot := bots.next(t)
	id := bot.query.Get("call_id")
	resp, body := b.do(t, http.MethodDelete, "/v1/calls/"+id, "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	u.waitBye()
	if ev := bot.expect(t, "closed"); ev["reason"] != "hangup" {
		t.Fatalf("closed: %v", ev)
	}
	if info := b.sipInfo(t, id); info.State != "closed" {
		t.Fatalf("after DELETE: %+v", info)
	}
}

// TestSIPBotCloseSendsBye: the bot's closeConnection ends the call with BYE.
func TestSIPBotCloseSendsBye(t *testing.T) {
	_, bots, addr := sipBridge(t, nil)
	u := newUAC(t, addr)
	if code, m := u.invite(); code != 200 {
		t.Fatalf("INVITE answered %d:\n%s", code, m)
	}
	bot := bots.next(t)
	bot.send(t, map[string]any{"type": "closeConnection"})
	u.waitBye()
	if ev := bot.expect(t, "closed"); ev["reason"] != "bot_closed" {
		t.Fatalf("closed: %v", ev)
	}
}

// TestSIPShutdownSendsBye: Shutdown (SIGTERM) sends BYE to every SIP call.
func TestSIPShutdownSendsBye(t *testing.T) {
	b, bots, addr := sipBridge(t, nil)
	var us []*uac
	var bs []*sipBot
	for range 3 {
		u := newUAC(t, addr)
		if code, m := u.invite(); code != 200 {
			t.Fatalf("INVITE answered %d:\n%s", code, m)
		}
		us = append(us, u)
		bs = append(bs, bots.next(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i, u := range us {
		u.waitBye()
		if ev := bs[i].expect(t, "closed"); ev["reason"] != "shutdown" {
			t.Fatalf("closed: %v", ev)
		}
	}
}

// TestSIPBotUnreachable: a -bot-url nobody answers gets the INVITE a 503
// and leaves no call behind.
func TestSIPBotUnreachable(t *testing.T) {
	bots := newSIPBotServer(t)
	dead := bots.url
	bots.hs.Close() // nothing listens there any more
	b := newBridge(t, Config{SIPListen: "udp:127.0.0.1:0", BotURL: dead})
	u := newUAC(t, b.srv.SIPAddrs()[0].Addr)
	if code, m := u.invite(); code != 503 {
		t.Fatalf("INVITE answered %d, want 503:\n%s", code, m)
	}
	b.srv.mu.Lock()
	n, pending := len(b.srv.calls), b.srv.pending
	b.srv.mu.Unlock()
	if n != 0 || pending != 0 {
		t.Fatalf("%d calls, %d pending after a refused INVITE", n, pending)
	}
}

// TestSIPMaxCalls: SIP calls count against -max-calls: a flood of INVITEs
// gets exactly max-calls answered and the rest 503.
func TestSIPMaxCalls(t *testing.T) {
	const maxCalls, flood = 2, 6
	b, _, addr := sipBridge(t, func(c *Config) { c.MaxCalls = maxCalls })
	codes := make(chan int, flood)
	us := make([]*uac, flood)
	for i := range us {
		us[i] = newUAC(t, addr)
	}
	for _, u := range us {
		go func() { c, _ := u.invite(); codes <- c }()
	}
	var got []int
	for range flood {
		got = append(got, <-codes)
	}
	slices.Sort(got)
	want := []int{200, 200, 503, 503, 503, 503}
	if !slices.Equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	// The slots the SIP calls hold are the HTTP API's too.
	if err := b.srv.reserve(); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("reserve at max-calls: %v", err)
	}
}

// TestSIPOpusCall: an offer of Opus only is answered Opus on the offer's
// dynamic payload type, the bot's speech arrives as 20 ms Opus packets that
// decode to speech, and the caller's Opus reaches the bot at 16 kHz.
func TestSIPOpusCall(t *testing.T) {
	b, bots, addr := sipBridge(t, nil)
	u := newUAC(t, addr)
	u.opus = true
	code, ok := u.invite()
	if code != 200 {
		t.Fatalf("INVITE answered %d:\n%s", code, ok)
	}
	port, pt := answeredPort(t, ok)
	if pt != "96" {
		t.Fatalf("answered payload type %s, want 96", pt)
	}
	bot := bots.next(t)
	if info := b.sipInfo(t, bot.query.Get("call_id")); info.Codec != "opus" {
		t.Fatalf("GET codec %q", info.Codec)
	}
	bot.send(t, map[string]any{"type": "text", "text": "hello there from the bot ", "flush": true})
	bot.expect(t, "done")
	dec, err := media.NewDecoder(48000)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 5760)
	speech := 0
	for i, p := range u.packets() {
		if p.hdr.PayloadType != 96 {
			t.Fatalf("packet %d: PT %d, want 96", i, p.hdr.PayloadType)
		}
		n, err := dec.Decode(p.payload, pcm)
		if err != nil || n != 960 {
			t.Fatalf("packet %d: %d samples, %v; want 960 (20 ms)", i, n, err)
		}
		var e float64
		for _, v := range pcm[:n] {
			e += float64(v) * float64(v)
		}
		if math.Sqrt(e/float64(n)) > 300 {
			speech++
		}
	}
	if speech < 25 {
		t.Fatalf("%d speech frames", speech)
	}

	// The caller's Opus: 1 kHz, 20 ms packets.
	enc, err := media.NewEncoder(media.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	frame := make([]int16, 960)
	out := make([]byte, 1500)
	for k := range 25 {
		for i := range frame {
			frame[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(k*960+i)/48000))
		}
		n, err := enc.Encode(frame, out)
		if err != nil {
			t.Fatal(err)
		}
		u.sendRTP(port, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(k), Timestamp: uint32(k * 960), SSRC: 5}, Payload: out[:n]})
		time.Sleep(20 * time.Millisecond)
	}
	loud := 0
	deadline := time.After(waitTimeout)
	for loud < 5 {
		select {
		case f := <-bot.audio:
			var e float64
			for i := 0; i+1 < len(f); i += 2 {
				v := float64(int16(binary.LittleEndian.Uint16(f[i:])))
				e += v * v
			}
			if len(f) == 640 && math.Sqrt(e/320) > 2000 {
				loud++
			}
		case <-deadline:
			t.Fatalf("only %d loud caller audio frames reached the bot", loud)
		}
	}
	// The bot's keys go out as RFC 4733 on the offer's telephone-event
	// payload type (97 at 48 kHz), not the stream's own.
	bot.send(t, map[string]any{"type": "dtmf", "digits": "7"})
	ends := 0
	for deadline := time.Now().Add(waitTimeout); ends == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no telephone-event packet for the bot's key")
		}
		for _, p := range u.packets() {
			if p.hdr.PayloadType == streamDTMFPT {
				t.Fatalf("telephone-event sent on the stream's payload type %d", streamDTMFPT)
			}
			if p.hdr.PayloadType == 97 && len(p.payload) == 4 && p.payload[0] == 7 && p.payload[1]&0x80 != 0 {
				ends++
			}
		}
	}
	u.bye()
	bot.expect(t, "closed")
}

// TestSIPReceiveAllocs: a SIP G.711 call's per-packet receive path — the
// transport's push onto the call's queue, the loop's pop, jitter buffer,
// G.711 decoding with concealment (one packet in ten is lost), 8 → 16 kHz,
// 20 ms frames onto a listening socket's ring and its writer's pop —
// allocates nothing.
func TestSIPReceiveAllocs(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecPCMU, media.CodecPCMA} {
		t.Run(codec.String(), func(t *testing.T) {
			b := newBridge(t, Config{})
			c := b.srv.newCallState(newID(), callOptions{})
			defer c.cancel(nil)
			sink := newAudioSink(16000)
			c.addSink(sink)
			l, err := newRxLoop(c, sipCodecs(codec, sip.Media{
				Codec:   sip.Codec{Name: codec.String(), PayloadType: codec.PayloadType(), ClockRate: 8000, Channels: 1, FrameSamples: 160},
				HasDTMF: true, DTMFPayloadType: 101,
			}))
			if err != nil {
				t.Fatal(err)
			}
			q := newRTPQueue(c.ctx)
			payload := make([]byte, 160)
			pcm := make([]int16, 160)
			for i := range pcm {
				pcm[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000))
			}
			media.EncodeG711(payload, pcm, codec)
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: codec.PayloadType(), SSRC: 9}, Payload: payload}
			var got rtp.Packet
			frame := make([]byte, sink.frameBytes)
			start := time.Now()
			k, frames := 0, 0
			step := func() {
				now := start.Add(time.Duration(k) * 20 * time.Millisecond)
				if k%10 != 5 {
					p.SequenceNumber, p.Timestamp = uint16(k), uint32(k*160)
					q.push(p, now)
					at, err := q.next(&got, time.Time{})
					if err != nil {
						t.Fatal(err)
					}
					l.packet(&got, at)
				}
				k++
				l.due(now.Add(20 * time.Millisecond)) // the jitter buffer's wait has passed
				for {
					if _, ok := sink.pop(frame); !ok {
						break
					}
					frames++
				}
			}
			for range 50 {
				step()
			}
			if n := testing.AllocsPerRun(500, step); n != 0 {
				t.Fatalf("%.1f allocations per packet, want 0", n)
			}
			st := l.jb.Stats()
			if st.Concealed < 50 || frames < k-2 {
				t.Fatalf("%d frames for %d packets, %+v: the path was not exercised", frames, k, st)
			}
		})
	}
}
