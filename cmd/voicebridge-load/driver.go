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
	driveHTTP driveMode = iota // POST /v1/calls/{id}/text
	driveWS                    // the bot WebSocket /v1/calls/{id}/ws
)

// utterance is a sentence the bots say and how long the bridge takes to
// play it (calibrated once per run of the tool).
type utterance struct {
	Text     string
	Duration time.Duration
}

// driveConfig is the bot behaviour shared by every call of a run.
type driveConfig struct {
	Duty       float64 // fraction of the time speaking, 0 ≤ Duty ≤ 1 (0: idle calls)
	Listen     bool    // every call's bot WebSocket listens to the caller (?listen=pcm_16000)
	Utterances []utterance
}

// driveResult is what the bots did, merged over calls.
type driveResult struct {
	texts, textErrs atomic.Uint64 // over the run
	heard           atomic.Uint64 // caller audio messages the bots got in the window
	mu              sync.Mutex
	firstErr        string // guarded by mu
}

func (r *driveResult) fail(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.firstErr = cmp.Or(r.firstErr, fmt.Sprintf("%s: %v", what, err))
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

// readEvents counts the caller audio messages of the window, and drops the
// bridge's events, until the socket closes.
func (b *bot) readEvents() {
	defer close(b.wsDone)
	for {
		typ, r, err := b.ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err == nil && typ == websocket.BinaryMessage && b.win.contains(time.Now().UnixNano()) {
			b.res.heard.Add(1)
		}
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
		next = time.Now().Add(b.cfg.period(u))
		err := b.text(ctx, u.Text)
		if ctx.Err() != nil {
			return
		}
		b.res.texts.Add(1)
		if err != nil {
			b.res.textErrs.Add(1)
			b.res.fail("text", err)
		}
	}
}

// text sends text to speak: on the bot WebSocket from the bot's goroutine
// (its only writer), with a deadline, or with a POST.
func (b *bot) text(ctx context.Context, text string) error {
	if b.mode == driveWS {
		msg, _ := json.Marshal(map[string]any{"type": "text", "text": text, "flush": true, "try_trigger_generation": true})
		_ = b.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return b.ws.WriteMessage(websocket.TextMessage, msg)
	}
	body, _ := json.Marshal(map[string]any{"text": text, "flush": true, "try_trigger_generation": true})
	_, _, err := request(ctx, b.hc, http.MethodPost, b.base+b.call.Location+"/text", "application/json", body, http.StatusAccepted)
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
