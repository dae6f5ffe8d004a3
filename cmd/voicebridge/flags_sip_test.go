package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/bridge"
)

func TestParseConfigSIP(t *testing.T) {
	e := env(map[string]string{
		"VOICEBRIDGE_SIP_LISTEN":  "udp:127.0.0.1:5060,tcp:127.0.0.1:5060",
		"VOICEBRIDGE_RTP_PORTS":   "40000-40999",
		"VOICEBRIDGE_BOT_URL":     "ws://127.0.0.1:9000/bot?token=env-secret",
		"VOICEBRIDGE_RTP_TIMEOUT": "10s",
	})
	cfg, err := parseConfig([]string{"-rtp-timeout", "20s"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SIPListen != "udp:127.0.0.1:5060,tcp:127.0.0.1:5060" || cfg.RTPPortMin != 40000 || cfg.RTPPortMax != 40999 ||
		cfg.BotURL != "ws://127.0.0.1:9000/bot?token=env-secret" || cfg.RTPTimeout != 20*time.Second {
		t.Errorf("sip config: %+v", cfg)
	}
	def, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil || def.SIPListen != "" || def.RTPTimeout != 30*time.Second {
		t.Errorf("defaults: %v %+v", err, def)
	}
}

func TestParseConfigSIPErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-sip-listen", "tls:127.0.0.1:5061", "-bot-url", "ws://b/"},
		{"-sip-listen", "udp:127.0.0.1:5060"}, // no bot
		{"-sip-listen", "udp:127.0.0.1:5060", "-bot-url", "http://user:pw-secret@bot/"},
		{"-rtp-ports", "40001-40002"},
		{"-rtp-timeout", "-1s"},
	} {
		_, err := parseConfig(args, env(nil), io.Discard)
		if err == nil {
			t.Errorf("%v accepted", args)
			continue
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%v: error echoes the bot URL's password: %v", args, err)
		}
		if !errors.Is(err, bridge.ErrInvalidConfig) && !strings.Contains(err.Error(), "rtp-ports") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
