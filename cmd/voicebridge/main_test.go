package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseConfigServerFlags(t *testing.T) {
	e := env(map[string]string{
		"VOICEBRIDGE_UDP_PORTS":          "40000-40100",
		"VOICEBRIDGE_PUBLIC_IP":          "203.0.113.7",
		"VOICEBRIDGE_STUN":               "stun:stun.example.com:3478, stun:stun2.example.com",
		"VOICEBRIDGE_TURN":               "turn:turn.example.com:3478",
		"VOICEBRIDGE_TURN_USERNAME":      "u",
		"VOICEBRIDGE_TURN_PASSWORD":      "p",
		"VOICEBRIDGE_ALLOWED_ORIGINS":    "https://a.example.com",
		"VOICEBRIDGE_LOG_FORMAT":         "json",
		"VOICEBRIDGE_LOG_LEVEL":          "debug",
		"VOICEBRIDGE_MAX_TEXT":           "1000",
		"VOICEBRIDGE_DISCONNECT_TIMEOUT": "3s",
	})
	o, err := parseConfig([]string{"-allowed-origins", "https://b.example.com,https://c.example.com", "-shutdown-timeout", "2s"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.UDPPortMin != 40000 || o.UDPPortMax != 40100 || len(o.PublicIPs) != 1 || o.PublicIPs[0] != "203.0.113.7" ||
		len(o.STUNServers) != 2 || o.STUNServers[1] != "stun:stun2.example.com" || len(o.TURNServers) != 1 ||
		o.TURNUsername != "u" || o.TURNPassword != "p" || o.MaxPendingText != 1000 || o.DisconnectedTimeout != 3*time.Second {
		t.Errorf("config: %+v", o.Config)
	}
	if strings.Join(o.AllowedOrigins, " ") != "https://b.example.com https://c.example.com" {
		t.Errorf("the flag should replace the variable's list: %v", o.AllowedOrigins)
	}
	if o.logFormat != "json" || o.logLevel.String() != "DEBUG" || o.shutdownTimeout != 2*time.Second {
		t.Errorf("options: %q %v %v", o.logFormat, o.logLevel, o.shutdownTimeout)
	}
	for _, bad := range [][]string{
		{"-udp-ports", "5000"}, {"-udp-ports", "6000-5000"}, {"-public-ip", "example.com"},
		{"-stun", "stun.example.com"}, {"-turn", "turn:t.example.com"}, {"-log-format", "xml"},
		{"-allowed-origins", "example.com"},
	} {
		if _, err := parseConfig(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}

func TestHelpExplainsEverything(t *testing.T) {
	var sb strings.Builder
	_, err := parseConfig([]string{"-h"}, env(nil), &sb)
	if err == nil {
		t.Fatal("want flag.ErrHelp")
	}
	for _, f := range []string{"listen", "tts-url", "tts-dialect", "tts-api-key", "tts-format", "model", "voice", "api-token",
		"max-calls", "allowed-origins", "udp-port", "udp-ports", "public-ip", "stun", "turn", "turn-username", "turn-password",
		"max-text", "connect-timeout", "disconnect-timeout", "log-format", "log-level", "shutdown-timeout"} {
		if !strings.Contains(sb.String(), "-"+f+" ") || !strings.Contains(sb.String(), envName(f)) {
			t.Errorf("help lacks -%s or %s", f, envName(f))
		}
	}
	if !strings.Contains(sb.String(), "tts-server") {
		t.Error("help does not mention tts-server")
	}
}

// startRun runs the command with args until the test ends and returns the
// base URL it logged.
func startRun(t *testing.T, args ...string) string {
	return startRunMatch(t, regexp.MustCompile(`url=(http://[0-9.:]+)/`), args...)
}

// startRunMatch runs the command with args until the test ends and returns
// the first submatch of re in its log.
func startRunMatch(t *testing.T, urlRE *regexp.Regexp, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, env(nil), pw)
		pw.Close()
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var base string
	timeout := time.After(20 * time.Second)
	for base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("run ended: %v", <-done)
			}
			if m := urlRE.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
		case <-timeout:
			t.Fatal("no listening line")
		}
	}
	t.Cleanup(func() {
		cancel()
		for range lines { // drain the log until run closes the pipe
		}
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return base
}

func TestRunServesAndShutsDown(t *testing.T) {
	base := startRun(t, "-listen", "127.0.0.1:0", "-log-level", "debug")
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["embedded_tts"] != true || cfg["voice_id"] != "ar-najdi-male-2" {
		t.Errorf("config.json: %v", cfg)
	}
}

func TestTTSServerCommand(t *testing.T) {
	url := startRunMatch(t, regexp.MustCompile(`munsit=(ws://[0-9.:]+/\S+)`), "tts-server", "-listen", "127.0.0.1:0", "-api-key", "k")
	got := make(chan struct{}, 64)
	h := tts.HandlerFuncs{AudioFunc: func([]byte, int) {
		select {
		case got <- struct{}{}:
		default:
		}
	}}
	if _, err := tts.Dial(context.Background(), tts.ClientConfig{URL: url, VoiceID: "ar-najdi-male-2", APIKey: "wrong"}, h); err == nil {
		t.Fatal("a wrong key was accepted")
	}
	cl, err := tts.Dial(context.Background(), tts.ClientConfig{URL: url, VoiceID: "ar-najdi-male-2", APIKey: "k"}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.SendText(context.Background(), "مرحبا", true, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no audio from tts-server")
	}
}

func TestTTSServerFlags(t *testing.T) {
	o, err := parseTTSServer([]string{"-log-format", "json"}, env(map[string]string{
		"VOICEBRIDGE_TTS_SERVER_LISTEN": "127.0.0.1:9999", "VOICEBRIDGE_TTS_SERVER_API_KEY": "k",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:9999" || o.apiKey != "k" || o.logFormat != "json" {
		t.Errorf("%+v", o)
	}
	var sb strings.Builder
	if _, err := parseTTSServer([]string{"-h"}, env(nil), &sb); err == nil || !strings.Contains(sb.String(), "VOICEBRIDGE_TTS_SERVER_LISTEN") {
		t.Errorf("help: %v\n%s", err, sb.String())
	}
}
