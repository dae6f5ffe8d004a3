package tts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// TestServiceErrorKeyRedacted: a service that quotes the refused key in its
// error message (at initConnection or mid-call) must not get it into the
// error, the event or the logs: the bridge passes those messages on to HTTP
// clients and bots.
func TestServiceErrorKeyRedacted(t *testing.T) {
	const key = "sk-QUOTED+key/42"
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Refused at initConnection, key quoted raw and query-escaped.
	up := websocket.Upgrader{}
	var hd handlers
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hd.add() {
			return
		}
		defer hd.done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"error","message":"Invalid API key `+key+` (`+url.QueryEscape(key)+`)"}`))
		_, _, _ = ws.ReadMessage()
	}))
	defer func() { hs.CloseClientConnections(); hs.Close(); hd.wait() }()
	cfg := ClientConfig{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + FaseehPath, APIKey: key, ModelID: "m", VoiceID: "v", Logger: log}
	_, err := Dial(context.Background(), cfg, HandlerFuncs{})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial: %v, want an auth *Error", err)
	}
	if strings.Contains(e.Message, key) || strings.Contains(e.Message, url.QueryEscape(key)) {
		t.Errorf("refusal message leaks the key: %q", e.Message)
	}

	// Mid-call.
	u := scriptedServer(t, `{"type":"error","message":"quota exceeded for `+key+`"}`)
	rec := newRecorder()
	dial(t, ClientConfig{URL: u, APIKey: key, ModelID: "m", VoiceID: "v", Logger: log}, rec)
	ev := rec.waitEvent(t, EventError)
	if !errors.As(ev.Err, &e) || strings.Contains(e.Message, key) || !strings.Contains(e.Message, "quota exceeded") {
		t.Errorf("error event %v leaks the key or lost its message", ev.Err)
	}

	// Mid-call, the key given in the URL only.
	u = scriptedServer(t, `{"type":"error","message":"quota exceeded for `+key+`"}`)
	rec = newRecorder()
	dial(t, ClientConfig{URL: u + "?x-api-key=" + url.QueryEscape(key), ModelID: "m", VoiceID: "v", Logger: log}, rec)
	ev = rec.waitEvent(t, EventError)
	if !errors.As(ev.Err, &e) || strings.Contains(e.Message, key) {
		t.Errorf("error event %v leaks the URL's key", ev.Err)
	}

	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), url.QueryEscape(key)) {
		t.Fatalf("logs leak the key:\n%s", logs.String())
	}
}
