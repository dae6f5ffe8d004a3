package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/voicebridge/voicebridge/bridge"
	"github.com/voicebridge/voicebridge/tts"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.TTSURL != "" || cfg.TTSFormat != "pcm_24000" ||
		cfg.Model != "faseeh-mini-v1-preview" || cfg.Voice != "ar-najdi-male-2" || cfg.APIToken != "" ||
		cfg.MaxCalls != bridge.DefaultMaxCalls() || cfg.TTSDialect != "" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseConfigFlagWinsOverEnv(t *testing.T) {
	e := env(map[string]string{
		"VOICEBRIDGE_LISTEN":      "127.0.0.1:9000",
		"VOICEBRIDGE_MODEL":       "from-env",
		"VOICEBRIDGE_VOICE":       "env-voice",
		"VOICEBRIDGE_MAX_CALLS":   "7",
		"VOICEBRIDGE_TTS_URL":     "wss://api.munsit.ai/api/v1/websocket/text-to-speech",
		"VOICEBRIDGE_TTS_API_KEY": "secret-key",
		"VOICEBRIDGE_API_TOKEN":   "tok",
		"VOICEBRIDGE_TTS_FORMAT":  "pcm_16000",
	})
	cfg, err := parseConfig([]string{"-model", "from-flag", "-max-calls", "3"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != "from-flag" || cfg.MaxCalls != 3 {
		t.Errorf("flag did not win: model %q max-calls %d", cfg.Model, cfg.MaxCalls)
	}
	if cfg.Listen != "127.0.0.1:9000" || cfg.Voice != "env-voice" || cfg.TTSAPIKey != "secret-key" ||
		cfg.APIToken != "tok" || cfg.TTSFormat != "pcm_16000" {
		t.Errorf("env not applied: %+v", cfg)
	}
	if cfg.TTSDialect != tts.DialectMunsit {
		t.Errorf("dialect not inferred from URL: %q", cfg.TTSDialect)
	}
}

func TestParseConfigDialectExplicit(t *testing.T) {
	cfg, err := parseConfig([]string{"-tts-url", "ws://127.0.0.1:1/websocket/x", "-tts-dialect", "faseeh"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TTSDialect != tts.DialectFaseeh {
		t.Errorf("explicit dialect overridden: %q", cfg.TTSDialect)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env int", nil, map[string]string{"VOICEBRIDGE_MAX_CALLS": "lots"}, "VOICEBRIDGE_MAX_CALLS"},
		{"bad env dialect", nil, map[string]string{"VOICEBRIDGE_TTS_DIALECT": "x"}, "VOICEBRIDGE_TTS_DIALECT"},
		{"bad flag dialect", []string{"-tts-dialect", "polly"}, nil, "unknown dialect"},
		{"bad format", []string{"-tts-format", "mp3_44100"}, nil, "tts-format"},
		{"bad url scheme", []string{"-tts-url", "https://api.faseeh.com/x"}, nil, "ws://"},
		{"bad listen", []string{"-listen", "8080"}, nil, "listen"},
		{"negative calls", []string{"-max-calls", "-1"}, nil, "max-calls"},
		{"stray argument", []string{"serve"}, nil, "unexpected argument"},
		{"unknown flag", []string{"-nope"}, nil, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestParseConfigSecretNotEchoed(t *testing.T) {
	_, err := parseConfig([]string{"-tts-url", "https://host/x?x-api-key=supersecret"}, env(nil), io.Discard)
	if err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Fatalf("err = %v: want an error that does not echo the key", err)
	}
}

func TestParseConfigHelp(t *testing.T) {
	var sb strings.Builder
	_, err := parseConfig([]string{"-h"}, env(nil), &sb)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-tts-url", "VOICEBRIDGE_TTS_URL", "-max-calls", "VOICEBRIDGE_API_TOKEN"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestParseConfigUDPPort(t *testing.T) {
	o, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil || o.UDPPort != 0 || o.UDPPortMin != 0 {
		t.Fatalf("default: shared port 0 (picked at start), no range; got %d %d-%d, %v", o.UDPPort, o.UDPPortMin, o.UDPPortMax, err)
	}
	o, err = parseConfig([]string{"-udp-port", "3478"}, env(map[string]string{"VOICEBRIDGE_UDP_PORT": "9"}), io.Discard)
	if err != nil || o.UDPPort != 3478 {
		t.Fatalf("-udp-port 3478 (over its variable): %d, %v", o.UDPPort, err)
	}
	o, err = parseConfig(nil, env(map[string]string{"VOICEBRIDGE_UDP_PORTS": "50000-50999"}), io.Discard)
	if err != nil || o.UDPPortMin != 50000 || o.UDPPortMax != 50999 || o.UDPPort != 0 {
		t.Fatalf("per-call range from the environment: %+v, %v", o.Config, err)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-udp-port", "5000", "-udp-ports", "6000-6100"}, nil, "exclude each other"},
		{[]string{"-udp-port", "0", "-udp-ports", "6000-6100"}, nil, "exclude each other"},
		{[]string{"-udp-ports", "6000-6100"}, map[string]string{"VOICEBRIDGE_UDP_PORT": "5000"}, "exclude each other"},
		{[]string{"-udp-port", "70000"}, nil, "udp-port 70000"},
		{[]string{"-udp-port", "-1"}, nil, "udp-port -1"},
		{[]string{"-udp-port", "x"}, nil, "udp-port"},
	} {
		_, err := parseConfig(c.args, env(c.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want one containing %q", c.args, c.env, err, c.want)
		}
	}
}
