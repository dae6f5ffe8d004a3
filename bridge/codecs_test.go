package bridge

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/peertest"
	"github.com/voicebridge/voicebridge/media"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// g711Peer is a receive-only Pion peer whose offer lists codecs in the
// given order.
type g711Peer struct {
	pc        *webrtc.PeerConnection
	packets   chan *rtp.Packet
	connected chan struct{}
}

func newG711Peer(t *testing.T, codecs []webrtc.RTPCodecParameters) *g711Peer {
	t.Helper()
	pc := peertest.MustPeer(t, codecs, nil)
	p := &g711Peer{pc: pc, packets: make(chan *rtp.Packet, 4096), connected: make(chan struct{})}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.connected) })
		}
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case p.packets <- pkt:
			case <-stop:
				return
			}
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(stop); _ = pc.Close(); wg.Wait() })
	return p
}

func (p *g711Peer) offer(t *testing.T) string {
	t.Helper()
	return peertest.Offer(t, p.pc)
}

var (
	pcmuParams = webrtc.RTPCodecParameters{RTPCodecCapability: pcmuCodec, PayloadType: 0}
	pcmaParams = webrtc.RTPCodecParameters{RTPCodecCapability: pcmaCodec, PayloadType: 8}
	opusParams = webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: 111}
	te8kParams = webrtc.RTPCodecParameters{RTPCodecCapability: telephoneEvent8k, PayloadType: 101}
)

// TestWireG711: a peer offering PCMU first (then Opus, PCMA) gets PCMU: the
// answer names PCMU and telephone-event/8000 only, GET reports it, and the
// peer decodes the speech from 160-byte packets with timestamps +160 per
// 20 ms; the text's tone is what it hears.
func TestWireG711(t *testing.T) {
	b := newBridge(t, Config{}, seams{ttsServer: ttsserver.ServerConfig{}})
	p := newG711Peer(t, []webrtc.RTPCodecParameters{pcmuParams, opusParams, pcmaParams, te8kParams})
	resp, body := b.do(t, "POST", "/v1/calls?voice_id="+ttsserver.TestTonesVoice, "application/sdp", []byte(p.offer(t)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	answer := string(body)
	if !strings.Contains(answer, "PCMU/8000") || strings.Contains(strings.ToLower(answer), "opus") ||
		strings.Contains(answer, "PCMA") || !strings.Contains(answer, "telephone-event/8000") {
		t.Fatalf("answer does not take PCMU alone:\n%s", answer)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p.connected, "the peer to connect")
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	b.waitState(t, id, stateConnected)
	_, info := b.do(t, "GET", "/v1/calls/"+id, "", nil)
	var ci map[string]any
	if err := json.Unmarshal(info, &ci); err != nil || ci["codec"] != "pcmu" || ci["output_format"] != "pcm_8000" {
		t.Fatalf("GET: %s (%v)", info, err)
	}
	for drained := false; !drained; { // read from now on as packets come
		select {
		case <-p.packets:
		default:
			drained = true
		}
	}
	resp, body = b.do(t, "POST", "/v1/calls/"+id+"/text", "application/json",
		jsonBody(t, map[string]any{"text": words([]float64{700}, 3), "flush": true}))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("text: %d %s", resp.StatusCode, body)
	}
	var prev *rtp.Packet
	var arrivals []time.Time
	tone := 0
	pcm := make([]int16, 160)
	x := make([]float64, 160)
	for tone < wordFrames(3)-2 {
		var pkt *rtp.Packet
		select {
		case pkt = <-p.packets:
		case <-time.After(waitTimeout):
			t.Fatalf("%d tone frames heard, want %d", tone, wordFrames(3)-2)
		}
		if pkt.PayloadType != 0 || len(pkt.Payload) != 160 {
			t.Fatalf("packet: pt %d, %d bytes", pkt.PayloadType, len(pkt.Payload))
		}
		if prev != nil && pkt.SequenceNumber == prev.SequenceNumber+1 && pkt.Timestamp-prev.Timestamp != 160 {
			t.Fatalf("timestamp step %d", pkt.Timestamp-prev.Timestamp)
		}
		prev = pkt
		arrivals = append(arrivals, time.Now())
		media.DecodeG711(pcm, pkt.Payload, media.CodecPCMU)
		var e float64
		for i, v := range pcm {
			x[i] = float64(v)
			e += x[i] * x[i]
		}
		if math.Sqrt(e/160) > fullToneLevel && goertzelPower(x, 700, 8000)/(e*160/2) > 0.8 {
			tone++
		}
	}
	// Pacing as the receiver sees it (logged, not asserted): each packet's
	// arrival against the 20 ms grid of the first one's.
	dev := make([]float64, len(arrivals))
	for i, at := range arrivals {
		dev[i] = math.Abs(float64(at.Sub(arrivals[0]) - time.Duration(i)*20*time.Millisecond))
	}
	sort.Float64s(dev)
	_, info = b.do(t, "GET", "/v1/calls/"+id, "", nil)
	t.Logf("G.711 arrivals off the 20 ms grid over %d packets: p50 %v, p99 %v; call %s",
		len(dev), time.Duration(dev[len(dev)/2]), time.Duration(dev[len(dev)*99/100]), info)
}

// TestCodecChoice: forced codecs, codec_not_offered, bad values, Opus
// first in the offer.
func TestCodecChoice(t *testing.T) {
	b := newBridge(t, Config{}, seams{ttsServer: ttsserver.ServerConfig{}})
	for _, c := range []struct {
		offer  []webrtc.RTPCodecParameters
		query  string
		status int
		want   string // answer's codec, or the error code
	}{
		{[]webrtc.RTPCodecParameters{opusParams, pcmuParams, pcmaParams}, "", 201, "opus"},
		{[]webrtc.RTPCodecParameters{pcmaParams, opusParams}, "", 201, "pcma"},
		{[]webrtc.RTPCodecParameters{opusParams, pcmuParams, pcmaParams}, "?codec=pcma", 201, "pcma"},
		{[]webrtc.RTPCodecParameters{pcmuParams, opusParams}, "?codec=opus", 201, "opus"},
		{[]webrtc.RTPCodecParameters{opusParams}, "?codec=pcmu", 400, "codec_not_offered"},
		{[]webrtc.RTPCodecParameters{opusParams}, "?codec=g729", 400, "invalid_field"},
	} {
		p := newG711Peer(t, c.offer)
		resp, body := b.do(t, "POST", "/v1/calls"+c.query, "application/sdp", []byte(p.offer(t)))
		if resp.StatusCode != c.status {
			t.Fatalf("%v%s: %d %s", c.offer[0].MimeType, c.query, resp.StatusCode, body)
		}
		if c.status != 201 {
			if !strings.Contains(string(body), c.want) {
				t.Fatalf("%s: %s, want %s", c.query, body, c.want)
			}
			continue
		}
		id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
		_, info := b.do(t, "GET", "/v1/calls/"+id, "", nil)
		if !strings.Contains(string(info), `"codec":"`+c.want+`"`) {
			t.Fatalf("%s: GET %s, want codec %s", c.query, info, c.want)
		}
		b.do(t, "DELETE", "/v1/calls/"+id, "", nil)
	}
	// The JSON form forces too.
	p := newG711Peer(t, []webrtc.RTPCodecParameters{opusParams, pcmuParams})
	resp, body := b.do(t, "POST", "/v1/calls", "application/json", jsonBody(t, map[string]any{"sdp": p.offer(t), "codec": "pcmu"}))
	if resp.StatusCode != 201 || !strings.Contains(string(body), "PCMU/8000") {
		t.Fatalf("JSON codec pcmu: %d %s", resp.StatusCode, body)
	}
}
