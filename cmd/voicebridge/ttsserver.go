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
	server    ttsserver.ServerConfig // delivery and fault knobs
}

// parseTTSServer parses tts-server's flags (environment first, flags win).
func parseTTSServer(args []string, lookupEnv func(string) (string, bool), out io.Writer) (ttsServerOptions, error) {
	o := ttsServerOptions{logFormat: "text"}
	fs := flag.NewFlagSet("voicebridge tts-server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.listen, "listen", DefaultTTSServerListen, "address to listen on")
	fs.StringVar(&o.apiKey, "api-key", "", "when set, clients must send this key (x-api-key header or query parameter, or x_api_key in initConnection); never logged")
	sc := &o.server
	fs.Float64Var((*float64)(&sc.Pace), "pace", float64(ttsserver.DefaultPace), "delivery speed in seconds of audio per second (-1: as fast as possible)")
	fs.DurationVar(&sc.ChunkDuration, "chunk", ttsserver.DefaultChunkDuration, "audio per message")
	fs.DurationVar(&sc.FirstChunkDuration, "first-chunk", 0, "audio in each generation's first message (0: as -chunk)")
	fs.DurationVar(&sc.FirstChunkDelay, "first-chunk-delay", ttsserver.DefaultFirstChunkDelay, "latency from a trigger to its first message (negative: none)")
	fs.BoolVar(&sc.MunsitIsFinal, "munsit-isfinal", false, "end munsit generations with an isFinal chunk (the munsit seed shows none)")
	fs.DurationVar(&sc.Faults.ClearLag, "clear-lag", 0, "munsit: keep sending the cleared generation this long after reading clear (a hosted service's late stop)")
	fs.BoolVar(&sc.Faults.ReaderPongs, "reader-pongs", false, "answer pings at once from the read loop, as hosted services do")
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
	if sc.Pace == 0 || sc.Pace < 0 && sc.Pace != ttsserver.PaceASAP {
		return o, fmt.Errorf("-pace must be positive, or -1 for as fast as possible")
	}
	if sc.ChunkDuration <= 0 || sc.FirstChunkDuration < 0 || sc.Faults.ClearLag < 0 {
		return o, fmt.Errorf("-chunk must be positive; -first-chunk and -clear-lag must not be negative")
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
	cfg := o.server
	cfg.APIKey, cfg.Logger = o.apiKey, log
	err = ttsserver.ListenAndServe(ctx, o.listen, cfg)
	if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
		log.Info("stopped")
		return nil
	}
	return err
}
