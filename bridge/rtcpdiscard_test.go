package bridge

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/peertest"
)

// TestOneWayCallSendsSenderReports: a one-way call (no RTCP reader, its
// client's RTCP dropped on arrival) still sends RTCP sender reports for its
// audio, read by a real Pion receiver.
func TestOneWayCallSendsSenderReports(t *testing.T) {
	b := newBridge(t, Config{})
	pc := peertest.MustPeer(t, nil, nil)
	gotSR := make(chan struct{})
	var once sync.Once
	var readers sync.WaitGroup
	pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		readers.Add(1) // before the Wait below: this runs while the call is up
		defer readers.Done()
		for {
			pkts, _, err := rcv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(tr.SSRC()) && sr.NTPTime != 0 {
					once.Do(func() { close(gotSR) })
				}
			}
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose(); readers.Wait() })
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(peertest.Offer(t, pc)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, gotSR, "a sender report from the bridge")
}

// TestTwoWayCallSendsReceiverReports: a two-way call reports on the
// caller's audio (RTCP receiver reports about the caller's SSRC).
func TestTwoWayCallSendsReceiverReports(t *testing.T) {
	b := newBridge(t, Config{})
	_, tk, _ := b.createTalkCall(t)
	gotRR := make(chan struct{})
	var once sync.Once
	var reader sync.WaitGroup
	sender := tk.pc.GetSenders()[0]
	tk.track.mu.Lock()
	ssrc := uint32(tk.track.ssrc)
	tk.track.mu.Unlock()
	reader.Go(func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				rr, ok := p.(*rtcp.ReceiverReport)
				if !ok {
					continue
				}
				for _, r := range rr.Reports {
					if r.SSRC == ssrc {
						once.Do(func() { close(gotRR) })
					}
				}
			}
		}
	})
	t.Cleanup(func() { _ = tk.pc.GracefulClose(); reader.Wait() })
	words := toneWords(t, 50, 50)
	for seq := 0; ; seq++ {
		select {
		case <-gotRR:
			return
		case <-time.After(20 * time.Millisecond): // pacing only, not asserted
		}
		if seq >= int(waitTimeout/(20*time.Millisecond)) {
			t.Fatal("no receiver report about the caller's audio")
		}
		if err := tk.track.send(uint16(seq), uint32(seq*960), false, seq == 0, words[seq%len(words)]); err != nil {
			t.Fatal(err)
		}
	}
}
