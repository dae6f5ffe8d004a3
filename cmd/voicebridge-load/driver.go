package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// driveMode is how a call's bot speaks to the bridge: calls alternate.
type driveMode int

const (
	driveHTTP driveMode = iota // POST /v1/calls/{id}/text and /clear
	driveWS                    // the bot WebSocket /v1/calls/{id}/ws
)

// idleBefore: a call is silent if its last speech packet is this old.
const idleBefore = 100 * time.Millisecond

// utterance is a sentence the bots say and how long the bridge takes to
// play it (calibrated once per run of the tool).
type utterance struct {
	Text     string
	Duration time.Duration
}

// driveConfig is the bot behaviour shared by every call of a run.
type driveConfig struct {
	Duty       float64 // fraction of the time speaking, 0 ≤ Duty ≤ 1 (0: idle calls)
	BargeEvery int     // interrupt every k-th utterance of a call (0: never)
	Listen     bool    // every call's bot WebSocket listens to the caller (?listen=pcm_16000)
	Utterances []utterance
}

// driveResult is what the bots saw in the window, merged over calls.
type driveResult struct {
	mu                               sync.Mutex // guards all but heard
	Texts, TextErrs, Missed, BargeNA int        // Missed: texts whose speech was not heard before the next; BargeNA: clears when nothing played
	Barge                            []time.Duration
	Events                           map[string]int // bot WebSocket events by type, all the run
	FirstErr                         string
	heard                            atomic.Uint64 // caller audio messages the bots got
}

func (r *driveResult) do(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func (r *driveResult) fail(what string, err error) {
	r.do(func() { r.FirstErr = cmp.Or(r.FirstErr, fmt.Sprintf("%s: %v", what, err)) })
}

// bot drives one call.
type bot struct {
	cfg  *driveConfig
	hc   *http.Client
	base string
	call *callClient
	mode driveMode
	res  *driveResult
	rng  *rand.Rand
	win  *window

	ws     *websocket.Conn
	wsDone chan struct{}
}

// open dials the bot WebSocket (in ws mode, or to listen) and starts its
// reader.
func (b *bot) open(ctx context.Context) error {
	if b.mode != driveWS && !b.cfg.Listen {
		return nil
	}
	u := "ws" + strings.TrimPrefix(b.base, "http") + b.call.Location + "/ws"
	if b.cfg.Listen {
		u += "?listen=pcm_16000"
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("load: bot websocket: %w", err)
	}
	b.ws = ws
	b.wsDone = make(chan struct{})
	go b.readEvents()
	return nil
}

// readEvents counts the bridge's events and caller audio messages until
// the socket closes.
func (b *bot) readEvents() {
	defer close(b.wsDone)
	for {
		typ, r, err := b.ws.NextReader()
		if err != nil {
			return
		}
		if typ == websocket.BinaryMessage {
			if _, err := io.Copy(io.Discard, r); err == nil && b.win.contains(time.Now().UnixNano()) {
				b.res.heard.Add(1)
			}
			continue
		}
		var ev struct{ Type string }
		if json.NewDecoder(r).Decode(&ev) != nil || ev.Type == "" {
			ev.Type = "unparsed"
		}
		b.res.do(func() { b.res.Events[ev.Type]++ })
	}
}

// close ends the bot WebSocket and waits for its reader.
func (b *bot) close() {
	if b.ws == nil {
		return
	}
	_ = b.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = b.ws.Close()
	<-b.wsDone
}

// period is how long one utterance's cycle lasts at the duty cycle.
func (c *driveConfig) period(u utterance) time.Duration {
	return time.Duration(float64(u.Duration) / c.Duty)
}

// run speaks until ctx ends: utterance k of call i is sentence (i+k) mod n,
// started every Duration/Duty, the first after a random offset so calls do
// not speak in step.
func (b *bot) run(ctx context.Context) {
	if b.cfg.Duty == 0 { // an idle call: the bot never speaks
		<-ctx.Done()
		return
	}
	us := b.cfg.Utterances
	first := b.cfg.period(us[b.call.Index%len(us)])
	next := time.Now().Add(time.Duration(b.rng.Int64N(int64(first))))
	for k := 0; ; k++ {
		if !sleepUntil(ctx, next) {
			return
		}
		u := us[(b.call.Index+k)%len(us)]
		start := time.Now()
		next = start.Add(b.cfg.period(u))
		// Text → first speech is measured only from silence: while the
		// call still speaks, the next speech packet says nothing about it.
		arm := start.UnixNano()
		if b.call.Stats.lastSpeech.Load() > arm-int64(idleBefore) {
			arm = 0
		}
		missed := b.call.Stats.firstAudio.from.Swap(arm) != 0
		err := b.text(ctx, u.Text)
		b.res.do(func() {
			b.res.Missed += boolInt(missed)
			b.res.Texts++
			b.res.TextErrs += boolInt(err != nil)
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.res.fail("text", err)
			continue
		}
		if b.cfg.BargeEvery > 0 && (b.call.Index+k)%b.cfg.BargeEvery == b.cfg.BargeEvery-1 {
			if at := b.barge(ctx, start, u); !at.IsZero() {
				// The utterance was cut: keep the duty cycle on what was said.
				next = start.Add(time.Duration(float64(at.Sub(start)) / b.cfg.Duty))
			}
		}
	}
}

// barge interrupts the utterance about 40% into its speech, once speech is
// playing, and measures clear → last speech packet. It returns when it sent
// the clear (zero if it did not).
func (b *bot) barge(ctx context.Context, start time.Time, u utterance) time.Time {
	deadline := start.Add(5*time.Second + u.Duration)
	// Wait for speech to start, then 40% of the utterance.
	for b.call.Stats.firstAudio.from.Load() != 0 {
		if !sleepUntil(ctx, time.Now().Add(20*time.Millisecond)) || time.Now().After(deadline) {
			return time.Time{}
		}
	}
	if !sleepUntil(ctx, time.Now().Add(u.Duration*2/5)) {
		return time.Time{}
	}
	clearAt := time.Now()
	at := clearAt.UnixNano()
	playing := b.call.Stats.lastSpeech.Load() >= at-int64(frameDuration+5*time.Millisecond)
	if playing {
		b.call.Stats.toSilence.arm(at)
	}
	if err := b.clear(ctx); err != nil {
		b.res.fail("clear", err)
		return time.Time{}
	}
	if !sleepUntil(ctx, time.Now().Add(400*time.Millisecond)) {
		return clearAt
	}
	b.res.do(func() {
		if playing { // signed: negative when the last speech packet left before the clear
			b.res.Barge = append(b.res.Barge, time.Duration(b.call.Stats.lastSpeech.Load()-at))
		} else {
			b.res.BargeNA++
		}
	})
	return clearAt
}

func (b *bot) text(ctx context.Context, text string) error {
	if b.mode == driveWS {
		msg, _ := json.Marshal(map[string]any{"type": "text", "text": text, "flush": true, "try_trigger_generation": true})
		return b.wsWrite(msg)
	}
	body, _ := json.Marshal(map[string]any{"text": text, "flush": true, "try_trigger_generation": true})
	return b.post(ctx, b.call.Location+"/text", body, http.StatusAccepted)
}

func (b *bot) clear(ctx context.Context) error {
	if b.mode == driveWS {
		return b.wsWrite([]byte(`{"type":"clear"}`))
	}
	return b.post(ctx, b.call.Location+"/clear", nil, http.StatusNoContent)
}

// wsWrite sends one message on the bot WebSocket, from the bot's goroutine
// (its only writer), with a deadline.
func (b *bot) wsWrite(msg []byte) error {
	_ = b.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return b.ws.WriteMessage(websocket.TextMessage, msg)
}

func (b *bot) post(ctx context.Context, path string, body []byte, want int) error {
	_, _, err := request(ctx, b.hc, http.MethodPost, b.base+path, "application/json", body, want)
	return err
}

// sleepUntil waits for t or ctx; it reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
