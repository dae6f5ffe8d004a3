// Package ttsserver is the embedded TTS: a WebSocket server that speaks
// both dialects of the Faseeh/Munsit streaming TTS protocol (see package
// tts) on loopback, so that voicebridge runs, and is tested, without an
// account or a network.
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
package ttsserver
