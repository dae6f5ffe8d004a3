// Package ttstest holds test helpers shared by the tests of tts and
// tts/ttsserver: dialing a client against a test server and a log writer
// safe for concurrent loggers. Only tests import it.
package ttstest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts"
)

// Guard is the failure guard of every wait: generous, never a timing
// assertion.
const Guard = 30 * time.Second

// Dial dials a client with handler h (failing t on an error, within
// Guard) and closes it when the test ends.
func Dial(t testing.TB, cfg tts.ClientConfig, h tts.Handler) *tts.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	c, err := tts.Dial(ctx, cfg, h)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ClientConfig is the client configuration of the tests for a dialect's
// URL on a test server.
func ClientConfig(url string) tts.ClientConfig {
	return tts.ClientConfig{URL: url, ModelID: "faseeh-v1-preview", VoiceID: "ar-najdi-male-2"}
}

// LockedWriter serializes writes of concurrent loggers to W.
type LockedWriter struct {
	W  *bytes.Buffer
	Mu *sync.Mutex
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	return l.W.Write(p)
}
