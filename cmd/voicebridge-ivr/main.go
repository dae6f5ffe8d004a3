// Command voicebridge-ivr is an example bot: a keypad IVR that answers each
// key the caller presses by speaking it ("You pressed 5.") and logs the level
// of the caller's voice it receives. It is the shortest path to see the whole
// loop: caller audio and DTMF in, speech out.
//
//	voicebridge-ivr -call ID [-bridge http://127.0.0.1:8080]
//	    joins a running call (e.g. the demo page's, with its microphone on)
//	    on its bot WebSocket, /v1/calls/ID/ws?listen=pcm_16000
//	voicebridge-ivr -serve 127.0.0.1:9090
//	    is a WebSocket server for the bridge's -bot-url
//	    (voicebridge -sip-listen ... -bot-url ws://127.0.0.1:9090/): every
//	    SIP call the bridge takes opens a socket here
//
// Both use the same handler, IVR.Run: the bot protocol is the same. The
// bridge's API token, when it has one, is read from VOICEBRIDGE_API_TOKEN
// (never from a flag, never logged).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv("VOICEBRIDGE_API_TOKEN"), os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "voicebridge-ivr:", err)
		os.Exit(1)
	}
}

// listenFormats are the caller audio formats of the contract.
var listenFormats = []string{"pcm_8000", "pcm_16000", "pcm_24000", "pcm_48000"}

// run is the whole command; it returns when the call ends (-call), when ctx
// ends, or on a bad flag.
func run(ctx context.Context, args []string, token string, stderr io.Writer) error {
	fs := flag.NewFlagSet("voicebridge-ivr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "voicebridge-ivr: an example keypad IVR bot for voicebridge.\n\n"+
			"  voicebridge-ivr -call ID [-bridge URL]   join a running call's bot WebSocket\n"+
			"  voicebridge-ivr -serve HOST:PORT         be the bridge's -bot-url (SIP calls)\n\n"+
			"The bridge's API token, if any, is read from VOICEBRIDGE_API_TOKEN.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	bridgeURL := fs.String("bridge", "http://127.0.0.1:8080", "the bridge's base URL (with -call)")
	callID := fs.String("call", "", "join this call's bot WebSocket")
	serve := fs.String("serve", "", "serve the bridge's -bot-url WebSocket on this address (host:port)")
	listen := fs.String("listen", "pcm_16000", "caller audio format to ask for (with -call): "+strings.Join(listenFormats, ", "))
	greeting := fs.String("greeting", "Hello. Press any key.", "said when the bot joins a call; empty: nothing")
	debug := fs.Bool("debug", false, "log every event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if (*callID == "") == (*serve == "") {
		return errors.New("give exactly one of -call ID (join a call) or -serve ADDR (be the bridge's -bot-url)")
	}
	if !contains(listenFormats, *listen) {
		return fmt.Errorf("-listen %q: want one of %s", *listen, strings.Join(listenFormats, ", "))
	}
	lvl := slog.LevelInfo
	if *debug {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	ivr := &IVR{Greeting: *greeting, Log: log}

	if *callID != "" {
		u, err := botSocketURL(*bridgeURL, *callID, *listen)
		if err != nil {
			return err
		}
		return join(ctx, ivr, u, token)
	}
	ln, err := net.Listen("tcp", *serve)
	if err != nil {
		return err
	}
	return serveBots(ctx, ln, ivr)
}

// botSocketURL is ws(s)://host/v1/calls/{id}/ws?listen=... for a bridge base URL.
func botSocketURL(base, callID, listen string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("-bridge: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("-bridge %q: want an http:// or https:// URL", base)
	}
	if u.Host == "" || u.User != nil {
		return "", fmt.Errorf("-bridge %q: want scheme://host:port, without credentials (the token comes from VOICEBRIDGE_API_TOKEN)", u.Redacted())
	}
	if callID == "" || strings.ContainsAny(callID, "/?#") {
		return "", fmt.Errorf("-call %q: not a call id", callID)
	}
	prefix := strings.TrimSuffix(u.EscapedPath(), "/")
	if u, err = u.Parse(prefix + "/v1/calls/" + url.PathEscape(callID) + "/ws"); err != nil {
		return "", fmt.Errorf("-call %q: %w", callID, err)
	}
	u.RawQuery = url.Values{"listen": {listen}}.Encode()
	return u.String(), nil
}

// join dials the call's bot socket and runs the IVR on it.
func join(ctx context.Context, ivr *IVR, u, token string) error {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(dctx, u, h)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return fmt.Errorf("join %s: HTTP %d %s", u, resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return fmt.Errorf("join %s: %w", u, err)
	}
	ivr.Log.Info("joined the call", "url", u)
	defer conn.Close()
	return ivr.Run(ctx, conn)
}

// serveBots accepts the bridge's bot sockets on ln until ctx ends, one IVR.Run
// per socket, and waits for them all before it returns.
func serveBots(ctx context.Context, ln net.Listener, ivr *IVR) error {
	ctx, cancel := context.WithCancel(ctx) // also ends the calls if Serve fails
	defer cancel()
	var wg sync.WaitGroup
	up := websocket.Upgrader{} // the bridge is not a browser: no Origin to check
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // Upgrade answered the request
			}
			q := r.URL.Query()
			log := ivr.Log.With("call_id", q.Get("call_id"))
			log.Info("call", "from", q.Get("from"), "to", q.Get("to"), "listen", q.Get("listen"))
			per := *ivr
			per.Log = log
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				if err := per.Run(ctx, conn); err != nil && ctx.Err() == nil {
					log.Warn("call ended badly", "err", err)
				}
			}()
		}),
	}
	ivr.Log.Info("serving bot sockets", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
		<-errc
	case err = <-errc:
		cancel()
	}
	wg.Wait() // ctx's end closed every socket (IVR.Run)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
