package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// DefaultTTSServerListen is the default address of voicebridge tts-server.
const DefaultTTSServerListen = "127.0.0.1:8081"

// ttsServerEnvName is the environment variable of a tts-server flag:
// -listen is VOICEBRIDGE_TTS_SERVER_LISTEN.
func ttsServerEnvName(flagName string) string {
	return envPrefix + "TTS_SERVER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ttsServerOptions are the flags of voicebridge tts-server.
type ttsServerOptions struct {
	listen    string
	apiKey    string
	logFormat string
	logLevel  slog.Level
}

// parseTTSServer parses tts-server's flags (environment first, flags win).
func parseTTSServer(args []string, lookupEnv func(string) (string, bool), out io.Writer) (ttsServerOptions, error) {
	o := ttsServerOptions{logFormat: "text"}
	fs := flag.NewFlagSet("voicebridge tts-server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.listen, "listen", DefaultTTSServerListen, "address to listen on")
	fs.StringVar(&o.apiKey, "api-key", "", "when set, clients must send this key (x-api-key header or query parameter, or x_api_key in initConnection); never logged")
	fs.Var(logFormatValue{&o.logFormat}, "log-format", "log format: text or json")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: voicebridge tts-server [flags]\n\n"+
			"Runs the embedded TTS alone, so bots can be developed offline. It speaks both\n"+
			"dialects of the Faseeh/Munsit TTS WebSocket protocol:\n"+
			"  faseeh: ws://ADDR%s\n  munsit: ws://ADDR%s\n"+
			"Speech comes from espeak-ng when installed, otherwise a voice-like test signal.\n\n"+
			"Every flag can also be set by its environment variable; a flag wins over its variable.\n\n",
			ttsserver.FaseehPath, ttsserver.MunsitPath)
		printFlags(fs, ttsServerEnvName)
	}
	if err := applyEnv(fs, ttsServerEnvName, lookupEnv); err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// runTTSServer runs the embedded TTS alone: voicebridge tts-server. It
// returns nil after ctx ends (a signal) and the server has stopped.
func runTTSServer(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	o, err := parseTTSServer(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, o.logFormat, o.logLevel)
	err = ttsserver.ListenAndServe(ctx, o.listen, ttsserver.ServerConfig{APIKey: o.apiKey, Logger: log})
	if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
		log.Info("stopped")
		return nil
	}
	return err
}
