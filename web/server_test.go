package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge"
)

// testServer is the bridge on the embedded TTS, served on a loopback port.
type testServer struct {
	URL   string
	token string

	mu      sync.Mutex
	deletes map[string]int // DELETE path → status the bridge answered
}

// startBridge starts the bridge with its embedded TTS (bridge.New with an
// empty TTS URL) behind httptest on 127.0.0.1:0. token, when set, is its
// -api-token. Cleanup shuts the bridge down (ending calls and the embedded
// TTS) and closes the listener; the bridge's log is shown if the test failed.
func startBridge(t *testing.T, token string) *testServer {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	srv, err := bridge.New(ctx, bridge.Config{Listen: "127.0.0.1:0", APIToken: token}, log)
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	ts := &testServer{token: token, deletes: make(map[string]int)}
	hs := httptest.NewServer(ts.recordDeletes(srv.Handler()))
	ts.URL = hs.URL
	t.Cleanup(func() {
		hs.Close()
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs.String())
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("bridge Shutdown: %v", err)
		}
	})
	return ts
}

// recordDeletes notes every DELETE the page sends and the bridge's answer.
// Other requests pass untouched (a WebSocket upgrade needs the original
// ResponseWriter's Hijack).
func (s *testServer) recordDeletes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.mu.Lock()
		s.deletes[r.URL.Path] = rec.status
		s.mu.Unlock()
	})
}

func (s *testServer) deleteStatus(path string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.deletes[path]
	return st, ok
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// get fetches path without credentials and returns its body.
func (s *testServer) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}

// assertHungUp checks that the page sent DELETE callURL, that the bridge
// accepted it (204, so the token went along) and that the call is closed as a
// hang-up. The DELETE of a page being left is a keepalive fetch that may land
// a moment after the page is gone, so it polls until waitTimeout. With
// wantReason empty any close reason is accepted (the browser closing the
// peer connection on unload can race the DELETE).
func (s *testServer) assertHungUp(t *testing.T, callURL, wantReason string) {
	t.Helper()
	if callURL == "" {
		t.Fatal("the page had no call URL to hang up")
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		status, sent := s.deleteStatus(callURL)
		state, reason, _ := s.callState(t, callURL)
		if sent && state == "closed" {
			if status != http.StatusNoContent {
				t.Errorf("DELETE %s: the bridge answered %d, want 204", callURL, status)
			}
			if wantReason != "" && reason != wantReason {
				t.Errorf("GET %s: close_reason %q, want %q", callURL, reason, wantReason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after hang-up: DELETE %s sent: %v (status %d); call state %q; want a DELETE and a closed call", callURL, sent, status, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// callState returns the state, close_reason and status of GET callURL.
func (s *testServer) callState(t *testing.T, callURL string) (state, reason string, status int) {
	t.Helper()
	info, status := s.callInfo(t, callURL)
	return info.State, info.CloseReason, status
}

// callInfo is the part of GET /v1/calls/{id} the tests read.
type callInfo struct {
	State        string `json:"state"`
	CloseReason  string `json:"close_reason"`
	VoiceID      string `json:"voice_id"`
	OutputFormat string `json:"output_format"`
}

// callInfo returns GET callURL and its status.
func (s *testServer) callInfo(t *testing.T, callURL string) (callInfo, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+callURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", callURL, err)
	}
	defer resp.Body.Close()
	var info callInfo
	if resp.StatusCode != http.StatusOK {
		return info, resp.StatusCode
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("GET %s: %v", callURL, err)
	}
	return info, resp.StatusCode
}

// lockedBuffer collects the bridge's log; the bridge writes from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
