package bridge

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// lockedBuffer is an io.Writer safe for the logger's concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecretsNeverLeak runs calls, failures included, with debug logging
// and checks that neither the TTS API key nor the bridge token appears in
// a log line, a response or the page's config.
func TestSecretsNeverLeak(t *testing.T) {
	const key, token = "tts-key-0123456789", "bridge-token-9876543210"
	rs, err := ttsserver.Start(context.Background(), "", ttsserver.ServerConfig{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: levelTrace}))
	var bodies []string
	for _, cfg := range []Config{
		{TTSURL: rs.URL(tts.DialectMunsit), TTSAPIKey: key, APIToken: token},
		{TTSURL: rs.URL(tts.DialectFaseeh), TTSAPIKey: key, APIToken: token},
		{TTSURL: rs.URL(tts.DialectMunsit) + "?x-api-key=" + key, APIToken: token},
		{TTSURL: rs.URL(tts.DialectMunsit), TTSAPIKey: key + "-wrong", APIToken: token},
	} {
		srv, err := newServer(context.Background(), cfg, log, seams{loopbackOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		b := &testBridge{srv: srv, hs: hs, url: hs.URL, tok: token}
		off := newOfferer(t, 1<<12, nil)
		resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
		bodies = append(bodies, string(body))
		if resp.StatusCode == 201 {
			id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
			off.accept(t, string(body))
			waitFor(t, off.connected, "connect")
			bt := b.dialBot(t, id)
			bt.send(t, map[string]any{"type": "text", "text": "نعم", "flush": true})
			bt.expect(t, "speaking")
			bt.expect(t, "done")
			_, body = b.do(t, "GET", "/v1/calls/"+id, "", nil)
			bodies = append(bodies, string(body))
		}
		_, body = b.do(t, "GET", "/v1/calls/x", "", nil, "Authorization", "Bearer wrong")
		bodies = append(bodies, string(body))
		_, body = b.do(t, "GET", "/config.json", "", nil)
		bodies = append(bodies, string(body))
		_, body = b.do(t, "GET", "/metrics", "", nil)
		bodies = append(bodies, string(body))
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
		hs.Close()
		off.close()
	}
	if !strings.Contains(logs.String(), "call created") {
		t.Fatal("nothing logged: the test is not looking at the logs")
	}
	for _, secret := range []string{key, token} {
		if i := strings.Index(logs.String(), secret); i >= 0 {
			s := logs.String()
			t.Errorf("a secret is logged: ...%s...", s[max(0, i-200):min(len(s), i+50)])
		}
		for _, b := range bodies {
			if strings.Contains(b, secret) {
				t.Errorf("a secret is in a response: %s", b)
			}
		}
	}
}
