// Package bridge ties the parts of voicebridge into calls: the HTTP and
// WebSocket API of the public contract, the WebRTC signaling (WHEP-style
// offer/answer), and one Session per call that owns its peer connection, its
// audio track and media stream (package media), its TTS connection (package
// tts) and every goroutine it starts.
package bridge
