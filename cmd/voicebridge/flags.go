package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

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

// options is everything the command line sets: the bridge's Config and what
// only the command uses (logging, shutdown).
type options struct {
	bridge.Config
	logFormat       string // text or json
	logLevel        slog.Level
	shutdownTimeout time.Duration
	pprofListen     string // -pprof-listen: net/http/pprof's address (pprof.go)
}

// listValue is a comma-separated list flag; each Set replaces the list
// (so a flag replaces its environment variable, not appends to it).
type listValue struct{ l *[]string }

func (v listValue) String() string {
	if v.l == nil {
		return ""
	}
	return strings.Join(*v.l, ",")
}

func (v listValue) Set(s string) error {
	*v.l = nil
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			*v.l = append(*v.l, e)
		}
	}
	return nil
}

// portRangeValue is a MIN-MAX UDP port range flag.
type portRangeValue struct{ min, max *int }

func (v portRangeValue) String() string {
	if v.min == nil || (*v.min == 0 && *v.max == 0) {
		return ""
	}
	return fmt.Sprintf("%d-%d", *v.min, *v.max)
}

func (v portRangeValue) Set(s string) error {
	if s == "" {
		*v.min, *v.max = 0, 0
		return nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return fmt.Errorf("want MIN-MAX, e.g. 50000-50999")
	}
	*v.min, *v.max = a, b
	return nil
}

// logFormatValue accepts text or json.
type logFormatValue struct{ s *string }

func (v logFormatValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v logFormatValue) Set(s string) error {
	switch s = strings.ToLower(s); s {
	case "text", "json":
		*v.s = s
		return nil
	}
	return fmt.Errorf("want text or json")
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
func newFlagSet(o *options, out io.Writer) *flag.FlagSet {
	cfg := &o.Config
	fs := flag.NewFlagSet("voicebridge", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Listen, "listen", bridge.DefaultListen, "HTTP address of the demo page, API and signaling")
	fs.StringVar(&cfg.TTSURL, "tts-url", "", "ws:// or wss:// URL of a Faseeh/Munsit-style TTS WebSocket (empty: the embedded TTS)")
	fs.Var(dialectValue{&cfg.TTSDialect}, "tts-dialect", "TTS protocol `DIALECT`: faseeh or munsit (empty: inferred from -tts-url, a path containing /websocket/ is munsit; the embedded TTS speaks munsit)")
	fs.StringVar(&cfg.TTSAPIKey, "tts-api-key", "", "TTS API key, sent where the dialect documents it; never logged")
	fs.StringVar(&cfg.TTSFormat, "tts-format", bridge.DefaultTTSFormat, "requested TTS audio: pcm_8000, pcm_16000, pcm_22050 or pcm_24000")
	fs.StringVar(&cfg.Model, "model", bridge.DefaultModel, "default model_id")
	fs.StringVar(&cfg.Voice, "voice", bridge.DefaultVoice, "default voice_id")
	fs.StringVar(&cfg.APIToken, "api-token", "", "when set, /v1/ requests need 'Authorization: Bearer TOKEN' (WebSocket: or ?token=)")
	fs.IntVar(&cfg.MaxCalls, "max-calls", bridge.DefaultMaxCalls(), "concurrent calls; beyond it POST /v1/calls answers 503")
	fs.Var(listValue{&cfg.AllowedOrigins}, "allowed-origins", "comma-separated browser `ORIGINS` (scheme://host[:port], or *) allowed besides the bridge's own on /v1/ and the bot WebSocket")
	fs.IntVar(&cfg.UDPPort, "udp-port", 0, "the one UDP `PORT` all WebRTC calls share (one socket per local address), to open in a firewall (0: a free port picked at start)")
	fs.Var(portRangeValue{&cfg.UDPPortMin, &cfg.UDPPortMax}, "udp-ports", "instead of -udp-port, a UDP socket per call with its port in `MIN-MAX` (empty: the shared -udp-port)")
	fs.Var(listValue{&cfg.PublicIPs}, "public-ip", "public `IP`s (comma-separated) announced in ICE candidates instead of the host's (NAT 1:1, e.g. a cloud VM's public address)")
	fs.Var(listValue{&cfg.STUNServers}, "stun", "comma-separated STUN `URLS` (stun:host:port) for server-reflexive candidates")
	fs.Var(listValue{&cfg.TURNServers}, "turn", "comma-separated TURN `URLS` (turn:host:port?transport=udp, turns:host:port)")
	fs.StringVar(&cfg.TURNUsername, "turn-username", "", "TURN username")
	fs.StringVar(&cfg.TURNPassword, "turn-password", "", "TURN password; never logged (prefer the environment variable)")
	fs.IntVar(&cfg.MaxPendingText, "max-text", bridge.DefaultMaxPendingText, "bytes of not-yet-spoken text a call may hold; beyond it text is refused with 429")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", bridge.DefaultConnectTimeout, "end a call whose client has not connected this long after the answer")
	fs.DurationVar(&cfg.DisconnectedTimeout, "disconnect-timeout", bridge.DefaultDisconnectedTimeout, "end a call whose peer connection stays disconnected this long")
	fs.StringVar(&cfg.SIPListen, "sip-listen", "", "SIP `ADDRS` to answer calls on, comma-separated udp:HOST:PORT or tcp:HOST:PORT (empty: no SIP)")
	fs.Var(portRangeValue{&cfg.RTPPortMin, &cfg.RTPPortMax}, "rtp-ports", "UDP port range `MIN-MAX` for SIP calls' RTP (even port) and RTCP (+1) (empty: ephemeral ports)")
	fs.StringVar(&cfg.BotURL, "bot-url", "", "ws:// or wss:// `URL` of the bot dialed for every SIP call (query call_id, from, to, listen added); credentials in it are never logged")
	fs.DurationVar(&cfg.RTPTimeout, "rtp-timeout", 30*time.Second, "end a SIP call whose caller sent no RTP this long")
	o.logFormat = "text"
	fs.Var(logFormatValue{&o.logFormat}, "log-format", "log `FORMAT`: text or json")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "`ADDR` (host:port) serving net/http/pprof on a listener of its own, with mutex and block profiling on (empty: off; never expose it)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long calls get to end before exit (a fleet node first drains for 3/4 of it)")

	// Cluster (README "Run a fleet").
	fs.StringVar(&cfg.ClusterRedis, "cluster-redis", "", "`URL` redis://[:password@]host:port/db of the fleet's registry (Redis or Valkey); with -node-url, this node joins the fleet (empty: it runs alone)")
	fs.StringVar(&cfg.NodeURL, "node-url", "", "this node's base `URL` (http://host:port) as other nodes and clients reach it; needed with -cluster-redis")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: voicebridge [flags]\n\n"+
			"Bridges a voice bot's text to a WebRTC call: text -> streaming TTS -> Opus/RTP.\n"+
			"With no flags it listens on %s with the embedded TTS.\n\n"+
			"  voicebridge tts-server [-listen ADDR] runs the embedded TTS alone (see voicebridge tts-server -h).\n\n"+
			"Every flag can also be set by its environment variable; a flag wins over its variable.\n\n", bridge.DefaultListen)
		printFlags(fs, envName)
	}
	return fs
}

// printFlags prints fs's flags as flag.PrintDefaults does, each with its
// environment variable (named by env).
func printFlags(fs *flag.FlagSet, env func(string) string) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(fs.Output(), "  -%s %s\n    \t%s\n    \tenv %s", f.Name, name, usage, env(f.Name))
		if f.DefValue != "" {
			fmt.Fprintf(fs.Output(), " (default %q)", f.DefValue)
		}
		fmt.Fprintln(fs.Output())
	})
}

// parseConfig builds the configuration from environment variables and then
// command-line flags, so that a flag wins over its variable. lookupEnv is
// os.LookupEnv outside tests. Values from either source are validated; the
// error names the variable or flag but never echoes a secret.
func parseConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (options, error) {
	var cfg options
	fs := newFlagSet(&cfg, out)
	if err := applyEnv(fs, envName, lookupEnv); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["udp-port"] && set["udp-ports"] && cfg.UDPPortMin != 0 {
		// Also -udp-port 0 with a range: Config cannot tell it from unset.
		return cfg, fmt.Errorf("-udp-port (one port shared by all calls) and -udp-ports (a port per call) exclude each other; set one")
	}
	cfg.Config = cfg.WithDefaults()
	return cfg, cfg.Validate()
}

// applyEnv sets every flag of fs whose environment variable (named by env)
// is set. The error names the variable but never echoes its value.
func applyEnv(fs *flag.FlagSet, env func(string) string, lookupEnv func(string) (string, bool)) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := lookupEnv(env(f.Name))
		if !ok || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s: %v", env(f.Name), err)
		}
	})
	return envErr
}
