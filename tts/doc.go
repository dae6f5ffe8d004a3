// Package tts owns everything that speaks the streaming text-to-speech
// WebSocket protocol of the Faseeh and Munsit services: the client the bridge
// uses to turn text into PCM16 audio.
//
// The protocol is documented in the services' WebSocket pages (the "seeds");
// the two dialects differ in field names, error shapes and which messages
// exist (Munsit has "clear" and "flush"; Faseeh has "isFinal" chunks).
//
// # Client
//
// Dial connects, sends initConnection and waits for connectionInitialized;
// SendText, Clear and Close drive it; a Handler receives audio, generation
// ends and events on one goroutine owned by the Client. Each connection has
// exactly one reader and one writer goroutine (gorilla/websocket's rule),
// keepalive pings, a read limit and write deadlines. A dropped connection is
// redialed with bounded, jittered backoff; the text whose generation had not
// started playing is sent again, and a generation cut after some of its
// audio was delivered is reported (EventInterrupted with its text) instead
// of being spoken twice. Clear (barge-in) retires the connection and dials
// a fresh one, so nothing of the interrupted generation is delivered,
// whatever the service does after the clear. The dialects are an unexported interface of typed
// messages: a dialect is never sent a message or field its seed does not
// define. Audio messages are decoded without allocation (a one-pass parser
// for the common shape, checked against encoding/json by a fuzz test; any
// other message goes through encoding/json).
//
// # Embedded server
//
// The embedded TTS server that speaks both dialects on loopback lives in
// package tts/ttsserver, as net/http/httptest sits under net/http. It
// imports tts (for Dialect); tts never imports it.
//
// Package tts never imports pion: it knows nothing of RTP or WebRTC.
package tts
