package bridge

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPionLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := pionLoggerFactory{log: log}.NewLogger("pc")

	l.Infof("ICE connection state changed: %s", "checking")  // Pion info → debug: hidden
	l.Warnf("Failed to accept RTP stream is already closed") // teardown noise → debug: hidden
	l.Warn("Failed to accept RTCP stream is already closed")
	l.Warnf("failed to %s", "handshake") // a real warning stays
	l.Error("dtls fatal")

	out := buf.String()
	for _, hidden := range []string{"checking", "stream is already closed"} {
		if strings.Contains(out, hidden) {
			t.Errorf("%q logged at info level:\n%s", hidden, out)
		}
	}
	for _, want := range []string{"level=WARN msg=\"failed to handshake\" pion=pc", "level=ERROR msg=\"dtls fatal\" pion=pc"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
