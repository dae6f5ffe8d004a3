package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLoggerFactory hands Pion a logging.LoggerFactory backed by the
// session's *slog.Logger, so ICE and DTLS lines carry the call id. Pion's
// info level is chatty (state changes of every transport), so it is logged
// at slog's debug level; warnings and errors keep their level.
type pionLoggerFactory struct{ log *slog.Logger }

var _ logging.LoggerFactory = pionLoggerFactory{}

// NewLogger implements logging.LoggerFactory.
func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

// pionLogger adapts slog to logging.LeveledLogger.
type pionLogger struct{ log *slog.Logger }

// levelTrace is below slog.LevelDebug: Pion's trace lines appear only when
// the handler is set that low.
const levelTrace = slog.LevelDebug - 4

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(msg string)                  { l.logf(levelTrace, "%s", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.logf(levelTrace, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.logf(levelTrace, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(levelTrace, format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.warn(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.warn(fmt.Sprintf(format, args...)) }
func (l pionLogger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }

// teardownNoise are Pion warnings that every hang-up produces (the SRTP
// session refuses streams that arrive while the peer connection closes).
// They say nothing an operator can act on, so they are logged at debug.
var teardownNoise = []string{
	"Failed to accept RTP stream is already closed",
	"Failed to accept RTCP stream is already closed",
}

// warn logs a Pion warning at warn level, or at debug level when it is
// known teardown noise.
func (l pionLogger) warn(msg string) {
	level := slog.LevelWarn
	for _, n := range teardownNoise {
		if strings.Contains(msg, n) {
			level = slog.LevelDebug
			break
		}
	}
	l.logf(level, "%s", msg)
}
