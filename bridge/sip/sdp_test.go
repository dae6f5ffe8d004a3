package sip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// offer builds an SDP offer from m= formats and extra media lines.
func offer(conn, m string, lines ...string) []byte {
	s := "v=0\r\no=alice 1 1 IN IP4 " + conn + "\r\ns=-\r\nc=IN IP4 " + conn + "\r\nt=0 0\r\nm=" + m + "\r\n"
	for _, l := range lines {
		s += l + "\r\n"
	}
	return []byte(s)
}

func TestNegotiate(t *testing.T) {
	const te8 = "a=rtpmap:101 telephone-event/8000"
	const te48 = "a=rtpmap:102 telephone-event/48000"
	const opus = "a=rtpmap:111 opus/48000/2"
	for _, tc := range []struct {
		name  string
		offer []byte
		force string
		codec string
		pt    uint8
		dtmf  int // -1: none
		dir   Direction
		hold  bool
		rtcp  string
		err   error
	}{
		{"pcmu first", offer("10.0.0.1", "audio 4000 RTP/AVP 0 8 111 101", opus, te8), "", "pcmu", 0, 101, SendRecv, false, "10.0.0.1:4001", nil},
		{"pcma first", offer("10.0.0.1", "audio 4000 RTP/AVP 8 0 101", te8), "", "pcma", 8, 101, SendRecv, false, "10.0.0.1:4001", nil},
		{"opus first, te at 48k", offer("10.0.0.1", "audio 4000 RTP/AVP 111 0 101 102", opus, te8, te48), "", "opus", 111, 102, SendRecv, false, "10.0.0.1:4001", nil},
		{"unknown codec skipped", offer("10.0.0.1", "audio 4000 RTP/AVP 9 18 8", "a=rtpmap:9 G722/8000", "a=rtpmap:18 G729/8000"), "", "pcma", 8, -1, SendRecv, false, "10.0.0.1:4001", nil},
		{"forced pcma", offer("10.0.0.1", "audio 4000 RTP/AVP 0 8", te8), "pcma", "pcma", 8, -1, SendRecv, false, "10.0.0.1:4001", nil},
		{"forced not offered", offer("10.0.0.1", "audio 4000 RTP/AVP 0 8"), "opus", "", 0, 0, "", false, "", ErrCodecNotOffered},
		{"no common codec", offer("10.0.0.1", "audio 4000 RTP/AVP 9 18", "a=rtpmap:9 G722/8000"), "", "", 0, 0, "", false, "", ErrNoCommonCodec},
		{"opus mono rtpmap is not RFC 7587", offer("10.0.0.1", "audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/48000"), "", "", 0, 0, "", false, "", ErrNoCommonCodec},
		{"no audio", offer("10.0.0.1", "video 4000 RTP/AVP 96", "a=rtpmap:96 VP8/90000"), "", "", 0, 0, "", false, "", ErrNoAudio},
		{"audio port 0", offer("10.0.0.1", "audio 0 RTP/AVP 0"), "", "", 0, 0, "", false, "", ErrNoAudio},
		{"SRTP only", offer("10.0.0.1", "audio 4000 RTP/SAVP 0"), "", "", 0, 0, "", false, "", ErrNoAudio},
		{"hold sendonly", offer("10.0.0.1", "audio 4000 RTP/AVP 0", "a=sendonly"), "", "pcmu", 0, -1, SendOnly, true, "10.0.0.1:4001", nil},
		{"hold inactive", offer("10.0.0.1", "audio 4000 RTP/AVP 0", "a=inactive"), "", "pcmu", 0, -1, Inactive, true, "10.0.0.1:4001", nil},
		{"hold 0.0.0.0", offer("0.0.0.0", "audio 4000 RTP/AVP 0"), "", "pcmu", 0, -1, SendRecv, true, "0.0.0.0:4001", nil},
		{"a=rtcp", offer("10.0.0.1", "audio 4000 RTP/AVP 0", "a=rtcp:5005 IN IP4 10.0.0.9"), "", "pcmu", 0, -1, SendRecv, false, "10.0.0.9:5005", nil},
		{"garbage", []byte("hello"), "", "", 0, 0, "", false, "", ErrBadSDP},
		{"c= not an IP", offer("example.com", "audio 4000 RTP/AVP 0"), "", "", 0, 0, "", false, "", ErrBadSDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Negotiate(tc.offer, tc.force)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Codec.Name != tc.codec || m.Codec.PayloadType != tc.pt {
				t.Errorf("codec %s/%d, want %s/%d", m.Codec.Name, m.Codec.PayloadType, tc.codec, tc.pt)
			}
			if (tc.dtmf < 0) == m.HasDTMF || (m.HasDTMF && int(m.DTMFPayloadType) != tc.dtmf) {
				t.Errorf("dtmf %v/%d, want %d", m.HasDTMF, m.DTMFPayloadType, tc.dtmf)
			}
			if m.Offered != tc.dir || m.Hold() != tc.hold {
				t.Errorf("direction %s hold %v, want %s %v", m.Offered, m.Hold(), tc.dir, tc.hold)
			}
			if m.RemoteRTCP.String() != tc.rtcp {
				t.Errorf("rtcp %s, want %s", m.RemoteRTCP, tc.rtcp)
			}
		})
	}
}

func TestAnswerParsesBack(t *testing.T) {
	m, err := Negotiate(offer("10.0.0.1", "audio 4000 RTP/AVP 111 0 101", "a=rtpmap:111 opus/48000/2", "a=rtpmap:101 telephone-event/48000", "a=sendonly"), "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Answer(m, netip.MustParseAddr("192.0.2.7"), 30000, 42, 2)
	if err != nil {
		t.Fatal(err)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, b)
	}
	s := string(b)
	for _, want := range []string{
		"o=- 42 2 IN IP4 192.0.2.7", "c=IN IP4 192.0.2.7", "m=audio 30000 RTP/AVP 111 101",
		"a=rtpmap:111 opus/48000/2", "a=rtpmap:101 telephone-event/48000", "a=fmtp:101 0-16",
		"a=ptime:20", "a=recvonly",
	} {
		if !strings.Contains(s, want+"\r\n") {
			t.Errorf("answer lacks %q:\n%s", want, s)
		}
	}
	// The answer answers itself: negotiating it again gives the same codec.
	back, err := Negotiate(b, "")
	if err != nil || back.Codec != m.Codec || back.Offered != RecvOnly {
		t.Fatalf("re-negotiating the answer: %+v %v", back, err)
	}
}

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]string{"": "", "PCMU": "pcmu", "opus": "opus", " pcma ": "pcma"} {
		if got, err := ParseCodec(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseCodec("g729"); err == nil {
		t.Error("g729 accepted")
	}
}

// TestAnswerRejectsOtherStreams: an offer with video and audio gets an
// answer with both m= lines in order, video rejected with port 0.
func TestAnswerRejectsOtherStreams(t *testing.T) {
	o := offer("10.0.0.1", "video 5000 RTP/AVP 96 97", "a=rtpmap:96 VP8/90000", "m=audio 4000 RTP/AVP 8")
	m, err := Negotiate(o, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Answer(m, netip.MustParseAddr("192.0.2.7"), 30000, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	v, a := strings.Index(s, "m=video 0 RTP/AVP 96\r\n"), strings.Index(s, "m=audio 30000 RTP/AVP 8\r\n")
	if v < 0 || a < 0 || v > a {
		t.Fatalf("want video rejected then audio:\n%s", s)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil || len(sd.MediaDescriptions) != 2 {
		t.Fatalf("answer: %v, %d m= lines", err, len(sd.MediaDescriptions))
	}
}
