package ttsserver

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/voicebridge/voicebridge/tts"
)

// drainCtrl writes the control messages already queued, so that they keep
// their order relative to what the reader received (a pong after a clear
// precedes the audio of text sent after it). False ends the writer.
func (ss *session) drainCtrl() bool {
	for {
		select {
		case m := <-ss.ctrl:
			if !ss.writeCtrl(m) {
				return false
			}
		default:
			return true
		}
	}
}

// waitUntil waits for t while serving control messages. False: the job
// was cancelled or the connection ended.
func (ss *session) waitUntil(j *genJob, t time.Time) (bool, bool) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return true, true
		}
		ss.timer.Reset(d)
		select {
		case <-ss.timer.C:
			return true, true
		case m := <-ss.ctrl:
			ss.timer.Stop()
			if !ss.writeCtrl(m) {
				return false, false
			}
		case <-j.ctx.Done():
			ss.timer.Stop()
			return false, ss.ctx.Err() == nil
		}
	}
}

// generate speaks one job. It returns false when the connection must end.
func (ss *session) generate(j *genJob, voice string, rate int, speed float64) bool {
	cfg := &ss.s.cfg
	pcm, err := ss.s.synth.pcm(j.ctx, j.text, voice, rate, speed)
	if err != nil {
		if j.ctx.Err() != nil {
			return ss.ctx.Err() == nil
		}
		ss.log.Debug("tts-server: synthesis failed", "err", err)
		return ss.write(ss.errorMsg(munsitCodeInternal, "Synthesis failed"))
	}
	if cfg.FirstChunkDelay > 0 {
		if ok, alive := ss.waitUntil(j, j.at.Add(cfg.FirstChunkDelay)); !ok {
			return alive
		}
	}
	f := &cfg.Faults
	start := time.Now()
	var played time.Duration // audio sent so far in this generation
	genChunks := 0
	for off := 0; off < len(pcm); {
		if f.SwitchRateAfterChunks > 0 && genChunks == f.SwitchRateAfterChunks && supportedRate(f.SwitchRate) && f.SwitchRate != rate {
			other, err := ss.s.synth.pcm(j.ctx, j.text, voice, f.SwitchRate, speed)
			if err != nil {
				return ss.ctx.Err() == nil
			}
			off = int(int64(off/2)*int64(f.SwitchRate)/int64(rate)) * 2
			pcm, rate = other, f.SwitchRate
			if off >= len(pcm) {
				break
			}
		}
		n := min(ss.chunkLen(rate, genChunks == 0), len(pcm)-off)
		if cfg.Pace > 0 {
			due := start.Add(time.Duration(float64(played) / float64(cfg.Pace)))
			if ok, alive := ss.waitUntil(j, due); !ok {
				return alive
			}
		}
		// Checked before every chunk, also one already due: a cleared
		// generation stops here, before the pong of a later ping.
		if j.ctx.Err() != nil {
			return ss.ctx.Err() == nil
		}
		if ss.faulty && !ss.fired {
			if f.ErrorAfterChunks > 0 && ss.chunks == f.ErrorAfterChunks {
				ss.fired = true
				return ss.write(ss.errorMsg(munsitCodeInternal, "Internal error (injected fault)"))
			}
			if f.DropAfterChunks > 0 && ss.chunks == f.DropAfterChunks {
				ss.fired = true
				ss.ws.NetConn().Close() // no close frame: a dropped connection
				ss.cancel()
				return false
			}
		}
		if !ss.drainCtrl() {
			return false
		}
		if j.ctx.Err() != nil { // a clear read before a pong just written
			return ss.ctx.Err() == nil
		}
		if !ss.write(ss.audioMsg(pcm[off:off+n], rate, false)) {
			return false
		}
		off += n
		ss.chunks++
		genChunks++
		played += time.Duration(int64(n) * int64(time.Second) / int64(2*rate))
	}
	if ss.d == tts.DialectFaseeh || cfg.MunsitIsFinal {
		if !ss.drainCtrl() {
			return false
		}
		if j.ctx.Err() != nil {
			return ss.ctx.Err() == nil
		}
		return ss.write(ss.audioMsg(nil, rate, true))
	}
	return true
}

// chunkLen is the byte length of the next chunk; first: the generation's
// first.
func (ss *session) chunkLen(rate int, first bool) int {
	cfg := &ss.s.cfg
	d := cfg.ChunkDuration
	if first && cfg.FirstChunkDuration > 0 {
		d = cfg.FirstChunkDuration
	}
	nominal := max(2, int(int64(rate)*2*int64(d)/int64(time.Second))&^1)
	switch cfg.Faults.Chunking {
	case ChunkFixed:
		if cfg.Faults.ChunkBytes > 0 {
			return cfg.Faults.ChunkBytes
		}
	case ChunkRandom:
		return 1 + ss.rng.IntN(2*nominal)
	case ChunkTiny:
		return 1 + ss.rng.IntN(7)
	case ChunkOdd:
		return nominal | 1
	}
	return nominal
}

// audioMsg encodes an audio message into the session's reused buffer:
// faseeh {"audio","sampleRate","isFinal"}, munsit {"audio","sampleRate"}
// (plus isFinal on the final chunk when MunsitIsFinal).
func (ss *session) audioMsg(pcm []byte, rate int, final bool) []byte {
	b := append(ss.enc[:0], `{"audio":"`...)
	b = base64.StdEncoding.AppendEncode(b, pcm)
	b = append(b, `","sampleRate":`...)
	b = strconv.AppendInt(b, int64(rate), 10)
	if ss.d == tts.DialectFaseeh || final {
		b = append(b, `,"isFinal":`...)
		b = strconv.AppendBool(b, final)
	}
	b = append(b, '}')
	ss.enc = b
	return b
}
