package ttsserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/voicebridge/voicebridge/tts"
)

// RunningServer is an embedded Server listening on a TCP address.
type RunningServer struct {
	*Server
	ln   net.Listener
	hs   *http.Server
	done chan struct{} // closed when Serve has returned
	once sync.Once
	stop func() bool
}

// Start listens on addr (if empty, "127.0.0.1:0": a free loopback port)
// and serves a NewServer(cfg) there until Close or ctx's end.
func Start(ctx context.Context, addr string, cfg ServerConfig) (*RunningServer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := NewServer(cfg)
	rs := &RunningServer{
		Server: s,
		ln:     ln,
		hs:     &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil},
		done:   make(chan struct{}),
	}
	go func() {
		defer close(rs.done)
		_ = rs.hs.Serve(ln)
	}()
	rs.stop = context.AfterFunc(ctx, func() { _ = rs.Close() })
	return rs, nil
}

// Addr is the address listened on, e.g. "127.0.0.1:39512".
func (rs *RunningServer) Addr() string { return rs.ln.Addr().String() }

// URL is the ws:// URL of dialect d's endpoint.
func (rs *RunningServer) URL(d tts.Dialect) string {
	return "ws://" + rs.Addr() + PathFor(d)
}

// Close stops listening, ends every connection and waits for every
// goroutine. Idempotent.
func (rs *RunningServer) Close() error {
	rs.once.Do(func() {
		rs.stop()
		_ = rs.hs.Close() // listener and idle conns; hijacked WebSockets are the Server's
		_ = rs.Server.Close()
		<-rs.done
	})
	return nil
}

// ListenAndServe serves the embedded TTS on addr until ctx ends, then
// closes it and waits. It always returns a non-nil error: ctx's cause
// after a clean stop, or the listen error. For `voicebridge tts-server`.
func ListenAndServe(ctx context.Context, addr string, cfg ServerConfig) error {
	rs, err := Start(ctx, addr, cfg)
	if err != nil {
		return err
	}
	rs.log.Info("tts-server: listening", "faseeh", rs.URL(tts.DialectFaseeh), "munsit", rs.URL(tts.DialectMunsit))
	<-ctx.Done()
	_ = rs.Close()
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return errors.New("tts: server stopped")
}
