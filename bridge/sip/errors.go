package sip

import "errors"

// Errors of the package. The SIP status each one answers with is in
// statusOf (status.go).
var (
	// ErrNoAudio: the offer has no usable RTP/AVP audio stream (488).
	ErrNoAudio = errors.New("sip: offer has no RTP/AVP audio stream")
	// ErrNoCommonCodec: the offer names none of PCMU, PCMA, Opus (488).
	ErrNoCommonCodec = errors.New("sip: no common codec")
	// ErrCodecNotOffered: the forced codec is not in the offer (488).
	ErrCodecNotOffered = errors.New("sip: forced codec not offered")
	// ErrBadSDP: the body is not a parsable SDP (400).
	ErrBadSDP = errors.New("sip: bad SDP")
	// ErrBusy: the bridge is at capacity (503). Acceptors return it (wrapped)
	// to reject a call.
	ErrBusy = errors.New("sip: at capacity")
	// ErrUnavailable: no bot took the call in time (503). Acceptors return
	// it (wrapped) when the bot's WebSocket cannot be opened.
	ErrUnavailable = errors.New("sip: bot unavailable")
	// ErrShutdown: the server is shutting down (503 for new calls; the
	// cause of calls ended by Shutdown).
	ErrShutdown = errors.New("sip: shutting down")
	// ErrHangup is the cause of a call the caller ended with BYE.
	ErrHangup = errors.New("sip: caller hung up")
	// ErrLocalHangup is the cause of a call ended by Call.Hangup (the
	// bridge's DELETE).
	ErrLocalHangup = errors.New("sip: hung up by the bridge")
	// ErrNoACK is the cause of a call whose caller never acknowledged the
	// 200 OK (RFC 3261 §13.3.1.4; ended with BYE).
	ErrNoACK = errors.New("sip: no ACK for 200 OK")
	// ErrCanceled is the cause of a call CANCELed before the answer (487).
	ErrCanceled = errors.New("sip: canceled by the caller")
	// ErrCallNotFound is returned by Server.Hangup for an unknown call.
	ErrCallNotFound = errors.New("sip: call not found")
	// ErrBadListen is returned by ParseListen for a malformed -sip-listen.
	ErrBadListen = errors.New("sip: bad listen address")
	// ErrBadBotURL is returned by the bot dialer for a URL that is not
	// ws:// or wss://.
	ErrBadBotURL = errors.New("sip: bad bot URL")
)
