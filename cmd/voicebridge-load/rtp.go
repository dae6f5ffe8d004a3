package main

import (
	"encoding/binary"
	"errors"
)

// rtpHeader is the part of an SRTP packet's header (RFC 3550 §5.1) the
// receivers need. SRTP (RFC 3711 §3.1) encrypts only the payload, so all
// of it is readable before decryption.
type rtpHeader struct {
	Marker    bool
	Seq       uint16
	Timestamp uint32
	// PayloadLen is the length of what follows the header. It includes the
	// authentication tag (a constant per session) and any padding (whose
	// count is encrypted), so it still tells the small silence frame from
	// speech.
	PayloadLen int
}

var (
	errNotRTP   = errors.New("load: not an RTP packet")
	errShortRTP = errors.New("load: RTP packet shorter than its header")
)

// isRTP tells RTP from what else arrives on an ICE/DTLS/SRTP 5-tuple: by
// the first byte (RFC 7983 §7), then the payload type (RFC 5761 §4: RTCP
// packet types 192..223 are payload types 64..95 with the marker bit).
func isRTP(b []byte) bool {
	if len(b) < 2 || b[0] < 128 || b[0] > 191 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95
}

// parseRTPHeader reads the fixed header and skips CSRCs and a header
// extension (RFC 3550 §5.3.1).
func parseRTPHeader(b []byte) (rtpHeader, error) {
	var h rtpHeader
	if len(b) < 12 {
		return h, errShortRTP
	}
	if b[0]>>6 != 2 {
		return h, errNotRTP
	}
	h.Marker = b[1]&0x80 != 0
	h.Seq = binary.BigEndian.Uint16(b[2:])
	h.Timestamp = binary.BigEndian.Uint32(b[4:])
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension
		if len(b) < off+4 {
			return h, errShortRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if len(b) < off {
		return h, errShortRTP
	}
	h.PayloadLen = len(b) - off
	return h, nil
}
