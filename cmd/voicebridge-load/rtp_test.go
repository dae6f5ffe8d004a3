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

func TestParseRTPHeader(t *testing.T) {
	cases := []struct {
		name string
		pkt  rtp.Packet
		len  int // what follows the header: padding stays (SRTP encrypts its count)
	}{
		{"plain", rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 111, SequenceNumber: 65535, Timestamp: 0xfffffff0, SSRC: 0xdeadbeef}, Payload: make([]byte, 80)}, 80},
		{"csrc", rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 960, SSRC: 1, CSRC: []uint32{1, 2, 3}}, Payload: make([]byte, 3)}, 3},
		{"extension", withExt(t, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 9, Timestamp: 1920, SSRC: 2}, Payload: make([]byte, 33)}, []byte{1, 2, 3}), 33},
		{"padding", rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, PayloadType: 111, SequenceNumber: 1, Timestamp: 2, SSRC: 3}, Payload: make([]byte, 10)}, 14},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := marshal(t, &c.pkt)
			h, err := parseRTPHeader(new(rtp.Header), b)
			if err != nil {
				t.Fatal(err)
			}
			want := rtpHeader{Marker: c.pkt.Marker, Seq: c.pkt.SequenceNumber, Timestamp: c.pkt.Timestamp, PayloadLen: c.len}
			if h != want {
				t.Errorf("got %+v, want %+v", h, want)
			}
			if !isRTP(b) {
				t.Error("not RTP")
			}
		})
	}
}

func TestParseRTPHeaderErrors(t *testing.T) {
	good := marshal(t, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, CSRC: []uint32{1, 2}}, Payload: []byte{1}})
	e := withExt(t, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}}, []byte{1, 2, 3, 4, 5})
	ext := marshal(t, &e)
	v1 := append([]byte(nil), good...)
	v1[0] = 0x40
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errNotRTP},
		{"11 bytes", good[:11], errNotRTP},
		{"csrc cut", good[:15], errNotRTP},
		{"extension header cut", ext[:14], errNotRTP},
		{"extension body cut", ext[:18], errNotRTP},
		{"version 1", v1, errNotRTP},
	} {
		if _, err := parseRTPHeader(new(rtp.Header), c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestIsRTP(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{[]byte{0x00, 0x01}, false},      // STUN binding request
		{[]byte{22, 0xfe}, false},        // DTLS handshake
		{[]byte{0x80, 111}, true},        // Opus
		{[]byte{0x80, 0x80 | 111}, true}, // Opus, marker
		{[]byte{0x80, 200}, false},       // sender report
		{[]byte{0x81, 201}, false},       // receiver report
		{[]byte{0x80, 223}, false},       // last RTCP type
		{[]byte{0x80, 0x80 | 96}, true},  // 224: above the RTCP range (RFC 5761 §4)
		{[]byte{0xc0, 111}, false},       // first byte 192: not RTP (RFC 7983)
		{[]byte{0x80}, false},            // too short
	} {
		if got := isRTP(c.b); got != c.want {
			t.Errorf("isRTP(%x) = %v, want %v", c.b, got, c.want)
		}
	}
}
