// Package plainrtp is the plain RTP/AVP media transport of SIP calls (RFC
// 3550, RFC 3551): no ICE, no DTLS, no SRTP. It sits beside the WebRTC
// transport of package bridge, not inside it.
//
// A Transport owns one even/odd UDP port pair from a PortPool (RTP on the
// even port, RTCP on the next one, RFC 3550 §11). It sends with WriteRTP —
// the same method pion's TrackLocalStaticRTP has, so the bridge's pacer can
// write to either — to the address the SDP named, and switches to the source
// address of the caller's RTP once it arrives (symmetric RTP, RFC 4961; what
// callers behind NAT depend on). Incoming RTP goes to a Sink callback
// (caller audio and RFC 4733 DTMF). RTCP sender reports leave every few
// seconds; a caller whose RTP stops for longer than the inactivity timeout
// ends the transport with ErrRTPTimeout.
//
// The G.711 helpers (EncodeG711, SilencePayload) turn 160 PCM16 samples
// (20 ms at 8 kHz) into a PCMU or PCMA payload without allocating, using
// github.com/zaf/g711.
package plainrtp
