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

	"github.com/voicebridge/voicebridge/bridge"
)

// testServer is the bridge on the embedded TTS, served on a loopback port.
type testServer struct {
	URL   string
	token string
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
	hs := httptest.NewServer(srv.Handler())
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
	return &testServer{URL: hs.URL, token: token}
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

// assertCallGone checks with GET /v1/calls/{id} that the page's hang-up
// reached the bridge: the call is closed (or already forgotten, 404).
func (s *testServer) assertCallGone(t *testing.T, callURL string) {
	t.Helper()
	if callURL == "" {
		t.Error("the page had no call URL to hang up")
		return
	}
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
	if resp.StatusCode == http.StatusNotFound {
		return
	}
	var call struct {
		State string `json:"state"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&call); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s after hang-up: status %d, %v", callURL, resp.StatusCode, err)
	}
	if call.State != "closed" {
		t.Errorf("GET %s after hang-up: state %q, want closed (the page's DELETE did not end the call)", callURL, call.State)
	}
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
