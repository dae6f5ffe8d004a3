package main

import (
	"encoding/binary"
	"errors"
)

// rtpHeader is the part of an RTP header (RFC 3550 §5.1) the receivers need.
// SRTP (RFC 3711 §3.1) encrypts only the payload, so all of it is readable
// before decryption.
type rtpHeader struct {
	Marker      bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	// PayloadLen is the length of what follows the header, without RTP
	// padding. On an SRTP packet it includes the authentication tag (a
	// constant per session), so it still tells the small silence frame from
	// speech.
	PayloadLen int
}

var (
	errNotRTP     = errors.New("load: not an RTP packet")
	errShortRTP   = errors.New("load: RTP packet shorter than its header")
	errBadPadding = errors.New("load: RTP padding longer than the payload")
)

// classify tells what a datagram arriving on an ICE/DTLS/SRTP 5-tuple is, by
// its first byte (RFC 7983 §7) and, for RTP/RTCP, the payload type (RFC 5761
// §4: RTCP packet types 192..223 are payload types 64..95 with the marker).
type packetKind int

const (
	kindOther packetKind = iota // STUN, DTLS, ZRTP, TURN channel, garbage
	kindRTP
	kindRTCP
)

func classify(b []byte) packetKind {
	if len(b) < 2 || b[0] < 128 || b[0] > 191 {
		return kindOther
	}
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		return kindRTCP
	}
	return kindRTP
}

// parseRTPHeader reads the fixed header, skips CSRCs and a header extension
// (RFC 3550 §5.3.1), and removes padding (the P bit) from PayloadLen. On SRTP
// (srtp true) the padding count is encrypted and the packet ends with the
// authentication tag, so padding is left in PayloadLen.
func parseRTPHeader(b []byte, srtp bool) (rtpHeader, error) {
	var h rtpHeader
	if len(b) < 12 {
		return h, errShortRTP
	}
	if b[0]>>6 != 2 {
		return h, errNotRTP
	}
	padding := b[0]&0x20 != 0
	extension := b[0]&0x10 != 0
	cc := int(b[0] & 0x0f)
	h.Marker = b[1]&0x80 != 0
	h.PayloadType = b[1] & 0x7f
	h.Seq = binary.BigEndian.Uint16(b[2:])
	h.Timestamp = binary.BigEndian.Uint32(b[4:])
	h.SSRC = binary.BigEndian.Uint32(b[8:])
	off := 12 + 4*cc
	if len(b) < off {
		return h, errShortRTP
	}
	if extension {
		if len(b) < off+4 {
			return h, errShortRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
		if len(b) < off {
			return h, errShortRTP
		}
	}
	end := len(b)
	if padding && !srtp {
		p := int(b[len(b)-1])
		if p == 0 || p > end-off {
			return h, errBadPadding
		}
		end -= p
	}
	h.PayloadLen = end - off
	return h, nil
}
