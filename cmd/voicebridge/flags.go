package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/voicebridge/voicebridge/bridge"
	"github.com/voicebridge/voicebridge/tts"
)

// envPrefix prefixes every flag's environment variable: -tts-url is
// VOICEBRIDGE_TTS_URL.
const envPrefix = "VOICEBRIDGE_"

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// dialectValue is a flag.Value that accepts only known dialects.
type dialectValue struct{ d *tts.Dialect }

func (v dialectValue) String() string {
	if v.d == nil {
		return ""
	}
	return string(*v.d)
}

func (v dialectValue) Set(s string) error {
	d, err := tts.ParseDialect(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// newFlagSet declares every flag of the public contract on a new FlagSet that
// writes into cfg.
func newFlagSet(cfg *bridge.Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("voicebridge", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Listen, "listen", bridge.DefaultListen, "HTTP address of the demo page, API and signaling")
	fs.StringVar(&cfg.TTSURL, "tts-url", "", "ws:// or wss:// URL of a Faseeh/Munsit-style TTS WebSocket (empty: the embedded TTS)")
	fs.Var(dialectValue{&cfg.TTSDialect}, "tts-dialect", "faseeh or munsit (empty: inferred from -tts-url; a path containing /websocket/ is munsit)")
	fs.StringVar(&cfg.TTSAPIKey, "tts-api-key", "", "TTS API key, sent where the dialect documents it; never logged")
	fs.StringVar(&cfg.TTSFormat, "tts-format", bridge.DefaultTTSFormat, "requested TTS audio: pcm_8000, pcm_16000, pcm_22050 or pcm_24000")
	fs.StringVar(&cfg.Model, "model", bridge.DefaultModel, "default model_id")
	fs.StringVar(&cfg.Voice, "voice", bridge.DefaultVoice, "default voice_id")
	fs.StringVar(&cfg.APIToken, "api-token", "", "when set, /v1/ requests need 'Authorization: Bearer TOKEN' (WebSocket: or ?token=)")
	fs.IntVar(&cfg.MaxCalls, "max-calls", bridge.DefaultMaxCalls(), "concurrent calls; beyond it POST /v1/calls answers 503")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: voicebridge [flags]\n\n"+
			"Bridges a voice bot's text to a WebRTC call: text -> streaming TTS -> Opus/RTP.\n"+
			"With no flags it listens on %s with the embedded TTS.\n\n"+
			"Every flag can also be set by its environment variable; a flag wins over its variable.\n\n", bridge.DefaultListen)
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(fs.Output(), "  -%s %s\n    \t%s\n    \tenv %s", f.Name, name, usage, envName(f.Name))
			if f.DefValue != "" {
				fmt.Fprintf(fs.Output(), " (default %q)", f.DefValue)
			}
			fmt.Fprintln(fs.Output())
		})
	}
	return fs
}

// parseConfig builds the configuration from environment variables and then
// command-line flags, so that a flag wins over its variable. lookupEnv is
// os.LookupEnv outside tests. Values from either source are validated; the
// error names the variable or flag but never echoes a secret.
func parseConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (bridge.Config, error) {
	var cfg bridge.Config
	fs := newFlagSet(&cfg, out)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := lookupEnv(envName(f.Name))
		if !ok || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s: %v", envName(f.Name), err)
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg = cfg.WithDefaults()
	return cfg, cfg.Validate()
}
