package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/gorilla/websocket"
)

// writeWait bounds every write to the bridge.
const writeWait = 5 * time.Second

// maxMessage is the largest message the bot reads: a 20 ms frame at 48 kHz
// is 1920 bytes, events are small.
const maxMessage = 64 << 10

// IVR is a keypad bot: it greets the caller, answers each key with "You
// pressed N." (cutting its previous answer short) and logs the level of the
// caller's voice. One IVR serves any number of calls; Run handles one. The
// zero value works: no greeting, a level line every second, slog.Default.
type IVR struct {
	Greeting   string        // spoken when the bot joins; empty: none
	LevelEvery time.Duration // caller level log interval; zero: 1 s
	Log        *slog.Logger  // nil: slog.Default()
}

// event is what the bridge sends as JSON text (the bot protocol).
type event struct {
	Type       string `json:"type"`
	Digit      string `json:"digit"`
	DurationMS int    `json:"duration_ms"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Reason     string `json:"reason"`
}

// textMsg is the TTS protocol's text message, as bots send it to the bridge.
type textMsg struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Flush bool   `json:"flush"`
}

var clearMsg = []byte(`{"type":"clear"}`)

// Run serves one call on conn, a bot WebSocket of the bridge (dialed to
// /v1/calls/{id}/ws, or accepted from the bridge's -bot-url), until the call
// ends (nil), the socket fails, or ctx ends (then it closes conn and returns
// ctx's error). Run is the only reader and writer of conn.
func (v *IVR) Run(ctx context.Context, conn *websocket.Conn) error {
	log := v.Log
	if log == nil {
		log = slog.Default()
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetReadLimit(maxMessage)

	if v.Greeting != "" {
		if err := v.say(conn, v.Greeting); err != nil {
			return v.ended(ctx, err)
		}
		log.Info("said", "text", v.Greeting)
	}
	every := v.LevelEvery
	if every <= 0 {
		every = time.Second
	}
	var lvl level
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			return v.ended(ctx, err)
		}
		if typ == websocket.BinaryMessage {
			// Caller audio (listen=pcm_...): 20 ms of PCM16LE mono per message.
			lvl.add(msg)
			if time.Duration(lvl.frames)*20*time.Millisecond >= every {
				log.Info("caller audio", "frames", lvl.frames, "rms_dbfs", dbfs(lvl.rms()), "peak_frame_dbfs", dbfs(lvl.peak))
				lvl = level{}
			}
			continue
		}
		var ev event
		if err := json.Unmarshal(msg, &ev); err != nil {
			log.Warn("not JSON from the bridge", "err", err)
			continue
		}
		switch ev.Type {
		case "dtmf":
			text := Answer(ev.Digit)
			log.Info("key", "digit", ev.Digit, "duration_ms", ev.DurationMS)
			// A new key cuts the previous answer short: clear, then speak.
			if err := v.write(conn, clearMsg); err != nil {
				return v.ended(ctx, err)
			}
			if err := v.say(conn, text); err != nil {
				return v.ended(ctx, err)
			}
			log.Info("said", "text", text)
		case "speaking", "done":
			log.Debug(ev.Type)
		case "error":
			log.Warn("bridge error", "code", ev.Code, "message", ev.Message)
		case "closed":
			log.Info("call ended", "reason", ev.Reason)
			return nil
		}
	}
}

// ended turns a read or write failure into Run's result.
func (v *IVR) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
		return nil
	}
	return fmt.Errorf("ivr: bot socket: %w", err)
}

func (v *IVR) say(conn *websocket.Conn, text string) error {
	b, err := json.Marshal(textMsg{Type: "text", Text: text, Flush: true})
	if err != nil {
		return err
	}
	return v.write(conn, b)
}

func (v *IVR) write(conn *websocket.Conn, b []byte) error {
	conn.SetWriteDeadline(time.Now().Add(writeWait))
	return conn.WriteMessage(websocket.TextMessage, b)
}

// keyNames are the words for the keys that are not digits.
var keyNames = map[string]string{"*": "star", "#": "pound", "A": "A", "B": "B", "C": "C", "D": "D"}

// Answer is what the IVR says for a key: "You pressed 5.", "You pressed star.".
func Answer(digit string) string {
	if name, ok := keyNames[digit]; ok {
		digit = name
	}
	return "You pressed " + digit + "."
}

// level accumulates the energy of caller audio frames.
type level struct {
	frames  int
	sum     float64 // Σ x² over all samples
	samples int
	peak    float64 // the loudest frame's RMS
}

func (l *level) add(pcm []byte) {
	var sum float64
	n := len(pcm) / 2
	for i := 0; i < n; i++ {
		x := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
		sum += x * x
	}
	l.frames++
	l.sum += sum
	l.samples += n
	if n > 0 {
		l.peak = max(l.peak, math.Sqrt(sum/float64(n)))
	}
}

func (l *level) rms() float64 {
	if l.samples == 0 {
		return 0
	}
	return math.Sqrt(l.sum / float64(l.samples))
}

// dbfs formats an RMS (full scale 1) as dBFS with one decimal, "-inf" for silence.
func dbfs(rms float64) string {
	if rms <= 0 {
		return "-inf"
	}
	return fmt.Sprintf("%.1f", 20*math.Log10(rms))
}
