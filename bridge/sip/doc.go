// Package sip is voicebridge's second front door: a SIP user agent server
// (RFC 3261) that answers calls from a SIP gateway, PBX or trunk with plain
// RTP (package plainrtp), next to the HTTP API's WebRTC calls. It is built on
// github.com/emiago/sipgo (transport and transaction layers, dialog state);
// it knows nothing of the bridge: the bridge imports it, never the reverse.
//
// # Design
//
// A Server listens on UDP and/or TCP (Config.Listen, -sip-listen). Each new
// INVITE runs on its own goroutine (the transaction layer gives every
// request one), owned by the Server's WaitGroup until the call ends:
//
//	INVITE ──► Negotiate(offer) ── no SDP / no audio / no codec ──► 488
//	  │        (offer's order; Config.Codec forces one)   bad SDP ──► 400
//	  ├─► 100 Trying; bind an RTP/RTCP port pair ── none free ──► 503
//	  ├─► Acceptor.Accept(ctx, call)   ── ErrBusy/ErrUnavailable/timeout ──► 503
//	  │        ctx: AnswerTimeout (5 s), CANCEL (→ 487 by sipgo), Shutdown
//	  ├─► 200 OK + SDP answer, retransmitted (T1…T2) until the ACK
//	  │        no ACK within ACKTimeout (32 s = 64·T1) ──► BYE, ErrNoACK
//	  ├─► ACK: CallHandler.Started (the pacer may write to Call.Transport)
//	  └─► until: caller's BYE (ErrHangup) | Call.Hangup / Server.Hangup
//	      (BYE, ErrLocalHangup) | RTP inactivity (BYE, plainrtp.ErrRTPTimeout)
//	      | Shutdown (BYE, ErrShutdown)  ──► CallHandler.Ended(cause), once.
//
// In-dialog re-INVITEs (To tag set) change the remote address and the
// direction — hold (sendonly/inactive, or c=0.0.0.0) stops our sending,
// unhold resumes it, a caller that says it sends nothing pauses the RTP
// inactivity timer — and are answered with the same codec (an offer without
// it: 488, session unchanged). OPTIONS gets 200 with Allow and Accept; BYE
// or CANCEL matching nothing gets 481; unparsable datagrams are dropped and
// requests without Via/CSeq get 400 (sipgo). In-dialog requests go to where
// the INVITE came from (sipgo's RewriteContact), which works behind NAT and
// reuses the caller's TCP connection.
//
// BotDialer opens the bot's WebSocket for -bot-url with call_id, from, to
// and listen=pcm_16000 added to its query, within 5 s (else ErrUnavailable,
// a 503), and never shows the URL's credentials.
//
// # Wiring a SIP call into the bridge (for the integrator)
//
// The bridge implements Acceptor and CallHandler; roughly, in bridge:
//
//	func (s *Server) Accept(ctx context.Context, c *sip.Call) (sip.CallHandler, error) {
//	    if !s.reserve() { return nil, fmt.Errorf("%w: max-calls", sip.ErrBusy) }  // -max-calls
//	    id := newCallID()
//	    conn, err := s.botDialer.Dial(ctx, sip.BotCall{CallID: id, From: c.From, To: c.To})
//	    if err != nil { s.release(); return nil, err }                           // wraps ErrUnavailable → 503
//	    m := c.Media()  // Codec (pcmu/pcma/opus, PT, clock, 160 or 960 per frame), DTMF PT
//	    sess := newSession(id, transportRTP{c.Transport, m}, ...)  // pacer writes c.Transport.WriteRTP
//	    sess.sip = &sipInfo{CallID: c.CallID, From: c.From, To: c.To}          // GET /v1/calls/{id} "sip"
//	    go sess.serveBot(conn)                    // the same bot protocol as /v1/calls/{id}/ws
//	    return sess, nil                          // sess.Started: start pacing; HandleRTP: caller
//	}                                             // audio + RFC 4733 DTMF; Ended: close, "closed" hangup
//
// DELETE /v1/calls/{id} of a SIP call calls Call.Hangup (or
// Server.Hangup(c.CallID)); bridge Shutdown calls sip Server.Shutdown,
// which sends BYE to every call. A G.711 call asks the TTS for pcm_8000
// (unless the call named an output_format), frames 160 samples with
// plainrtp.EncodeG711 and plainrtp.SilencePayload; marker bit and
// timestamps are the pacer's, as on WebRTC.
package sip
