package tts_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/internal/ttstest"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestServiceErrorKeyRedacted: a service that quotes the refused key in its
// error message (at initConnection or mid-call) must not get it into the
// error, the event or the logs: the bridge passes those messages on to HTTP
// clients and bots.
func TestServiceErrorKeyRedacted(t *testing.T) {
	const key = "sk-QUOTED+key/42"
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&ttstest.LockedWriter{W: &logs, Mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Refused at initConnection, key quoted raw and query-escaped.
	u := scriptedInit(t, `{"type":"error","message":"Invalid API key `+key+` (`+url.QueryEscape(key)+`)"}`, false)
	cfg := tts.ClientConfig{URL: u, APIKey: key, ModelID: "m", VoiceID: "v", Logger: log}
	_, err := tts.Dial(context.Background(), cfg, tts.HandlerFuncs{})
	var e *tts.Error
	if !errors.As(err, &e) || !errors.Is(err, tts.ErrAuth) {
		t.Fatalf("Dial: %v, want an auth *tts.Error", err)
	}
	if strings.Contains(e.Message, key) || strings.Contains(e.Message, url.QueryEscape(key)) {
		t.Errorf("refusal message leaks the key: %q", e.Message)
	}

	// Mid-call.
	u = scriptedServer(t, `{"type":"error","message":"quota exceeded for `+key+`"}`)
	rec := newRecorder()
	dial(t, tts.ClientConfig{URL: u, APIKey: key, ModelID: "m", VoiceID: "v", Logger: log}, rec)
	ev := rec.waitEvent(t, tts.EventError)
	if !errors.As(ev.Err, &e) || strings.Contains(e.Message, key) || !strings.Contains(e.Message, "quota exceeded") {
		t.Errorf("error event %v leaks the key or lost its message", ev.Err)
	}

	// Mid-call, the key given in the URL only.
	u = scriptedServer(t, `{"type":"error","message":"quota exceeded for `+key+`"}`)
	rec = newRecorder()
	dial(t, tts.ClientConfig{URL: u + "?x-api-key=" + url.QueryEscape(key), ModelID: "m", VoiceID: "v", Logger: log}, rec)
	ev = rec.waitEvent(t, tts.EventError)
	if !errors.As(ev.Err, &e) || strings.Contains(e.Message, key) {
		t.Errorf("error event %v leaks the URL's key", ev.Err)
	}

	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), url.QueryEscape(key)) {
		t.Fatalf("logs leak the key:\n%s", logs.String())
	}
}
