package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
)

// -pprof-listen: off when empty; otherwise the profiles on a listener of
// their own (the heap profile answers), gone after stop.
func TestPprofListener(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	addr, stop, err := startPprof(context.Background(), "", log)
	if err != nil || addr != "" {
		t.Fatalf("empty address: %q, %v; want nothing", addr, err)
	}
	stop()
	addr, stop, err = startPprof(context.Background(), "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: %d %.80q", resp.StatusCode, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("pprof still served after stop")
	}
	if _, _, err := startPprof(context.Background(), "127.0.0.1:-1", log); err == nil {
		t.Fatal("bad address accepted")
	}
}

// The flag and its environment variable set the address.
func TestPprofFlag(t *testing.T) {
	o, err := parseConfig([]string{"-pprof-listen", "127.0.0.1:6060"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil || o.pprofListen != "127.0.0.1:6060" {
		t.Fatalf("flag: %q, %v", o.pprofListen, err)
	}
	env := func(k string) (string, bool) { return "127.0.0.1:7070", k == "VOICEBRIDGE_PPROF_LISTEN" }
	o, err = parseConfig(nil, env, io.Discard)
	if err != nil || o.pprofListen != "127.0.0.1:7070" {
		t.Fatalf("env: %q, %v", o.pprofListen, err)
	}
}

// The command line (which can hold -tts-api-key, -api-token, credentials in
// -bot-url) is not served.
func TestPprofHidesCommandLine(t *testing.T) {
	addr, stop, err := startPprof(context.Background(), "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(string(body), os.Args[0]) {
		t.Fatalf("cmdline served: %d %q", resp.StatusCode, body)
	}
}
