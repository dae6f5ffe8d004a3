// Package bridge ties the parts of voicebridge into calls: the HTTP and
// WebSocket API of the public contract, the WebRTC signaling (WHEP-style
// offer/answer), and one Session per call that owns its peer connection, its
// audio track and media stream (package media), its TTS connection (package
// tts) and every goroutine it starts.
//
// Use:
//
//	srv, err := bridge.New(ctx, cfg, log) // starts the embedded TTS when cfg.TTSURL is empty
//	http.Serve(ln, srv.Handler())         // /, /healthz, /metrics, /config.json, /v1/...
//	srv.Shutdown(ctx)                     // ends every call, stops the embedded TTS
//
// A call's life: POST /v1/calls validates the options and the offer,
// reserves a slot (Config.MaxCalls), builds the peer connection with a
// sendonly Opus track, dials and initializes the TTS connection while ICE
// gathers, and answers with gathering complete. The call's supervisor
// goroutine starts the pacer when the peer connects and tears everything
// down, once, in reverse order (pacer, TTS client, peer connection, the
// call's goroutines, codec) when the call's context is cancelled with a
// cause: DELETE, the bot's closeConnection, the peer closing, failing or
// staying disconnected, a client that never connects, or Shutdown. Pion's
// callbacks only signal the supervisor.
//
// Errors reach clients through one table (errorTable, classify): sentinels
// of this package, *tts.Error (a TTS refusal: 502 with the service's code and
// message) and *tts.FieldError (400).
package bridge
