package main

import (
	"errors"
	"testing"

	"github.com/pion/rtp"
)

func marshal(t *testing.T, p *rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withExt(t *testing.T, p rtp.Packet, payload []byte) rtp.Packet {
	t.Helper()
	if err := p.Header.SetExtension(1, payload); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseRTPHeaderMatchesPion(t *testing.T) {
	cases := []struct {
		name string
		pkt  rtp.Packet
	}{
		{"plain", rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 111, SequenceNumber: 65535, Timestamp: 0xfffffff0, SSRC: 0xdeadbeef}, Payload: make([]byte, 80)}},
		{"csrc", rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 960, SSRC: 1, CSRC: []uint32{1, 2, 3}}, Payload: make([]byte, 3)}},
		{"extension", withExt(t, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 9, Timestamp: 1920, SSRC: 2}, Payload: make([]byte, 33)}, []byte{1, 2, 3})},
		{"padding", rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, PayloadType: 111, SequenceNumber: 1, Timestamp: 2, SSRC: 3}, Payload: make([]byte, 10)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := marshal(t, &c.pkt)
			h, err := parseRTPHeader(b, false)
			if err != nil {
				t.Fatal(err)
			}
			want := rtpHeader{Marker: c.pkt.Marker, PayloadType: c.pkt.PayloadType, Seq: c.pkt.SequenceNumber,
				Timestamp: c.pkt.Timestamp, SSRC: c.pkt.SSRC, PayloadLen: len(c.pkt.Payload)}
			if h != want {
				t.Errorf("got %+v, want %+v", h, want)
			}
			if classify(b) != kindRTP {
				t.Errorf("classify: got %v, want RTP", classify(b))
			}
		})
	}
}

func TestParseRTPHeaderSRTPKeepsPadding(t *testing.T) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, PayloadType: 111, SSRC: 3}, Payload: make([]byte, 10)}
	b := marshal(t, &p)
	h, err := parseRTPHeader(b, true)
	if err != nil {
		t.Fatal(err)
	}
	if h.PayloadLen != 14 {
		t.Errorf("SRTP payload len %d, want 14 (padding is encrypted, not removed)", h.PayloadLen)
	}
}

func TestParseRTPHeaderErrors(t *testing.T) {
	good := marshal(t, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, CSRC: []uint32{1, 2}}, Payload: []byte{1}})
	e := withExt(t, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}}, []byte{1, 2, 3, 4, 5})
	ext := marshal(t, &e)
	badPad := marshal(t, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: []byte{1, 2, 9}})
	badPad[0] |= 0x20
	v1 := append([]byte(nil), good...)
	v1[0] = 0x40
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShortRTP},
		{"11 bytes", good[:11], errShortRTP},
		{"csrc cut", good[:15], errShortRTP},
		{"extension header cut", ext[:14], errShortRTP},
		{"extension body cut", ext[:18], errShortRTP},
		{"padding longer than payload", badPad, errBadPadding},
		{"version 1", v1, errNotRTP},
	} {
		if _, err := parseRTPHeader(c.b, false); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want packetKind
	}{
		{[]byte{0x00, 0x01}, kindOther},     // STUN binding request
		{[]byte{22, 0xfe}, kindOther},       // DTLS handshake
		{[]byte{0x80, 111}, kindRTP},        // Opus
		{[]byte{0x80, 0x80 | 111}, kindRTP}, // Opus, marker
		{[]byte{0x80, 200}, kindRTCP},       // sender report
		{[]byte{0x81, 201}, kindRTCP},       // receiver report
		{[]byte{0x80, 223}, kindRTCP},       // last RTCP type
		{[]byte{0x80, 0x80 | 96}, kindRTP},  // 224: above the RTCP range (RFC 5761 §4)
		{[]byte{0xc0, 111}, kindOther},      // first byte 192: not RTP (RFC 7983)
		{[]byte{0x80}, kindOther},           // too short
	} {
		if got := classify(c.b); got != c.want {
			t.Errorf("classify(%x) = %v, want %v", c.b, got, c.want)
		}
	}
}
