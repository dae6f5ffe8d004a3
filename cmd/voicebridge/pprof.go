package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Profiling: -pprof-listen serves net/http/pprof on a listener and mux of
// its own (never the API's), for measuring a running bridge (CPU and
// execution traces, mutex and block profiles). Off by default. No
// /debug/pprof/cmdline: the command line can hold the TTS key, the API
// token and -bot-url credentials.

// pprofRates: one mutex contention event in 20 sampled, block events of
// 10 µs or more; cheap enough to leave on during a load run, and set only
// while -pprof-listen is.
const (
	pprofMutexFraction = 20
	pprofBlockRate     = int(10 * time.Microsecond)
)

// startPprof listens on addr and serves the profiles until ctx ends or
// stop is called; it returns the address it listens on. An empty addr does
// nothing. stop waits for the server to end and turns the mutex and block
// profiling off again.
func startPprof(ctx context.Context, addr string, log *slog.Logger) (bound string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	prevMutex := runtime.SetMutexProfileFraction(pprofMutexFraction)
	runtime.SetBlockProfileRate(pprofBlockRate)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		_ = srv.Close()
	}()
	return ln.Addr().String(), func() {
		close(stopped)
		<-done
		runtime.SetMutexProfileFraction(prevMutex)
		runtime.SetBlockProfileRate(0)
	}, nil
}
