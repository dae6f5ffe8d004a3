// Package tts owns everything that speaks the streaming text-to-speech
// WebSocket protocol of the Faseeh and Munsit services: the client the bridge
// uses to turn text into PCM16 audio, and the embedded server that speaks both
// dialects on loopback so that voicebridge runs, and is tested, without an
// account or a network.
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
// redialed with bounded, jittered backoff and the text whose generation had
// not ended is sent again. The dialects are an unexported interface of typed
// messages: a dialect is never sent a message or field its seed does not
// define. Audio messages are decoded without allocation (a one-pass parser
// for the common shape, checked against encoding/json by a fuzz test; any
// other message goes through encoding/json).
//
// # Embedded server
//
// Server is an http.Handler serving the faseeh dialect at FaseehPath and the
// munsit dialect at MunsitPath. It is strict (unknown messages or fields and
// missing required fields are refused in the dialect's error shape), accepts
// the API key in all three placements, and speaks with espeak-ng (an Arabic
// voice for ar-* voice ids), resampled in pure Go with a Blackman-windowed
// sinc interpolator to the requested rate, in ~100 ms chunks delivered
// faster than real time. Without espeak-ng it speaks a deterministic
// voice-like signal and logs a warning once. Synthesized PCM is shared
// through a bounded LRU cache and a limit on concurrent espeak-ng processes,
// so hundreds of calls speaking the same prompts cost a handful of
// syntheses. Faults (chunking, pace, delays, errors, drops, auth refusal,
// rate switches) are injected through ServerConfig. Start listens on
// loopback and returns the URL of each dialect.
//
// Package tts never imports pion: it knows nothing of RTP or WebRTC.
package tts
