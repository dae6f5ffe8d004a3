// Command voicebridge bridges a voice bot's text to a WebRTC call: it streams
// the text to a Faseeh/Munsit-style TTS WebSocket and plays the speech as
// Opus/RTP on a Pion audio track. See README.md and the public contract.
//
//	voicebridge [flags]                  the bridge (embedded TTS by default)
//	voicebridge tts-server [-listen ADDR] the embedded TTS alone, for bot development
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/voicebridge/voicebridge/bridge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "voicebridge:", err)
		os.Exit(2)
	}
}

// run is the whole command; it returns when ctx ends (a signal) and the
// server has shut down, or on a start-up error.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	if len(args) > 0 && args[0] == "tts-server" {
		return runTTSServer(ctx, args[1:], lookupEnv, stderr)
	}
	o, err := parseConfig(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, o.logFormat, o.logLevel)
	_, stopPprof, err := startPprof(ctx, o.pprofListen, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	b, err := bridge.New(ctx, o.Config, log)
	if err != nil {
		ln.Close()
		return err
	}
	timeout := o.shutdownTimeout
	if o.ClusterRedis != "" {
		var stop func()
		ctx, timeout, stop = drainFirst(ctx, b, timeout, log)
		defer stop()
	}
	return serve(ctx, ln, b.Handler(), log, timeout, b.Shutdown, "voicebridge listening", "url", "http://"+ln.Addr().String()+"/")
}

// serve serves h on ln until ctx ends, then shuts down within timeout: HTTP
// first (no new requests; in-flight ones finish), then shutdown (which ends
// hijacked WebSockets and calls).
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, timeout time.Duration,
	shutdown func(context.Context) error, msg string, attrs ...any) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // bodies are small; WebSockets clear it on upgrade
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info(msg, attrs...)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", timeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := errors.Join(srv.Shutdown(sctx), shutdown(sctx))
	if serveErr == nil {
		<-errc // http.ErrServerClosed
	} else if !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(serveErr, err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newLogger returns the command's logger: text (default) or JSON on w.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
