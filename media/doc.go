// Package media owns the audio path of a call, from PCM16 chunks at the TTS
// sample rate to Opus/RTP packets on the wire: a streaming resampler to
// 48 kHz (libsoxr) whose state carries across chunks, a framer cutting exact
// 20 ms frames, an Opus encoder (libopus), a bounded queue with barge-in, and a
// pacer that sends one packet every 20 ms on an absolute wall-clock schedule.
//
// Package media never imports gorilla/websocket or package tts.
package media
