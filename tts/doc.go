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
// Package tts never imports pion: it knows nothing of RTP or WebRTC.
package tts
