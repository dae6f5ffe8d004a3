package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

// utteranceTexts are what the bots say: Arabic, like the default voice, of
// a few lengths.
var utteranceTexts = []string{
	"مرحبا، كيف يمكنني مساعدتك اليوم؟",
	"شكرا لاتصالك. سأقوم بالتحقق من طلبك الآن، يرجى الانتظار قليلا.",
	"موعدك القادم يوم الثلاثاء في الساعة العاشرة صباحا.",
	"هل تريد أن أرسل لك رسالة تأكيد على رقم هاتفك المسجل لدينا؟",
}

// quietAfter: a talkspurt is over when no speech frame came for this long.
const quietAfter = 700 * time.Millisecond

// calibrate plays each text once on one call of a fresh bridge and times
// its speech on the wire (first to last speech packet, plus one frame), so
// the bots can keep their duty cycle without watching every call.
func calibrate(ctx context.Context, o runOptions, texts []string) ([]utterance, error) {
	tgt, tts, err := startTargets(ctx, o.Bin, o.BridgeArgs, o.LogDir, "calibrate")
	if err != nil {
		return nil, err
	}
	defer func() { tgt.stop(); tts.stop() }()
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	rx, err := newRxSocket(media.CodecOpus, false)
	if err != nil {
		return nil, err
	}
	defer rx.close()
	win := &window{}
	c, err := dialCall(ctx, hc, rx, tgt.Base, 0, win)
	if err != nil {
		return nil, fmt.Errorf("load: calibration call: %w", err)
	}
	defer func() { c.hangup(hc, tgt.Base); c.close() }()
	b := &bot{cfg: &o.Drive, hc: hc, base: tgt.Base, call: c, mode: driveHTTP}
	// Let the receiver learn the silence frame.
	if !sleepUntil(ctx, time.Now().Add(300*time.Millisecond)) {
		return nil, ctx.Err()
	}
	var out []utterance
	for _, t := range texts {
		sent := time.Now()
		if err := b.text(ctx, t); err != nil {
			return nil, fmt.Errorf("load: calibration text: %w", err)
		}
		var first int64 // the first talkspurt's start: later ones (after a long pause) do not move it
		for deadline := sent.Add(30 * time.Second); ; {
			if !sleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
				return nil, ctx.Err()
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("load: calibration: no end of speech within 30 s for %q", t)
			}
			if first == 0 && c.Stats.speechStart.Load() > sent.UnixNano() {
				first = c.Stats.speechStart.Load()
			}
			if last := c.Stats.lastSpeech.Load(); first != 0 && time.Since(time.Unix(0, last)) > quietAfter {
				out = append(out, utterance{Text: t, Duration: time.Duration(last-first) + frameDuration})
				break
			}
		}
	}
	return out, nil
}
