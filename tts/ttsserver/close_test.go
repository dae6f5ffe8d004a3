package ttsserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestCloseDuringUpgrade: a connection whose upgrade is under way when
// Close runs must not keep Close waiting on a client that says nothing.
func TestCloseDuringUpgrade(t *testing.T) {
	s := NewServer(ServerConfig{})
	closed := make(chan struct{})
	s.upgrader.CheckOrigin = func(*http.Request) bool {
		// Past ServeHTTP's closed check, before the session exists.
		go func() { _ = s.Close(); close(closed) }()
		for {
			s.mu.Lock()
			c := s.closed
			s.mu.Unlock()
			if c {
				return true
			}
			time.Sleep(time.Millisecond)
		}
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+MunsitPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close() // the client stays silent until then
	select {
	case <-closed:
	case <-time.After(guard):
		t.Fatal("Close still waits for a connection upgraded while it ran")
	}
}
