package sip

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultBotTimeout bounds opening the bot's WebSocket (the contract's 5 s;
// then the INVITE gets 503).
const DefaultBotTimeout = 5 * time.Second

// BotDialer opens the bot's WebSocket (-bot-url) for each SIP call. Safe for
// concurrent use. Build it with NewBotDialer.
type BotDialer struct {
	url      *url.URL
	redacted string
	secrets  []string // raw secret strings to scrub from error texts
	// Timeout bounds one Dial. If zero, DefaultBotTimeout.
	Timeout time.Duration
	// Dialer dials. If nil, a copy of websocket.DefaultDialer.
	Dialer *websocket.Dialer
}

// BotCall is what the bot learns about a SIP call from its URL's query.
type BotCall struct {
	CallID   string // the bridge's call id (as in /v1/calls/{id})
	From, To string // the SIP URIs
}

// NewBotDialer checks a -bot-url: ws:// or wss:// with a host. The URL's
// credentials (userinfo, token-like query parameters) never appear in logs
// or errors; String returns the redacted form.
func NewBotDialer(raw string) (*BotDialer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: does not parse", ErrBadBotURL) // err would echo the URL
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("%w: scheme %q: want ws or wss", ErrBadBotURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: no host", ErrBadBotURL)
	}
	d := &BotDialer{url: u, redacted: RedactURL(u)}
	if u.User != nil {
		d.secrets = append(d.secrets, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			d.secrets = append(d.secrets, p)
		}
	}
	for k, vs := range u.Query() {
		if secretParam(k) {
			d.secrets = append(d.secrets, vs...)
		}
	}
	return d, nil
}

// String is the URL with its credentials redacted.
func (d *BotDialer) String() string { return d.redacted }

// URL is the URL dialed for call: -bot-url with call_id, from and to set
// in its query and listen=pcm_16000 unless it sets listen (userinfo, if
// any, goes as Basic auth). It holds the credentials: never log it.
func (d *BotDialer) URL(call BotCall) string {
	u := *d.url
	q := u.Query()
	q.Set("call_id", call.CallID)
	q.Set("from", call.From)
	q.Set("to", call.To)
	if q.Get("listen") == "" {
		q.Set("listen", "pcm_16000")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Dial opens the bot's WebSocket for call within Timeout (and ctx). Errors
// wrap ErrUnavailable (a 503 for the INVITE) and name only the redacted
// URL. The caller owns the returned conn.
func (d *BotDialer) Dial(ctx context.Context, call BotCall) (*websocket.Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultBotTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialer := websocket.DefaultDialer
	if d.Dialer != nil {
		dialer = d.Dialer
	}
	hdr := http.Header{"User-Agent": {"voicebridge"}}
	target := d.URL(call)
	if d.url.User != nil {
		// WebSocket URIs carry no userinfo (RFC 6455 §3): send it as Basic auth.
		req := http.Request{Header: hdr}
		p, _ := d.url.User.Password()
		req.SetBasicAuth(d.url.User.Username(), p)
		u, _ := url.Parse(target)
		u.User = nil
		target = u.String()
	}
	conn, resp, err := dialer.DialContext(ctx, target, hdr)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		msg := d.scrub(err.Error())
		if resp != nil {
			msg = fmt.Sprintf("%s (HTTP %d)", msg, resp.StatusCode)
		}
		return nil, fmt.Errorf("%w: dial bot %s: %s", ErrUnavailable, d.redacted, msg)
	}
	return conn, nil
}

// scrub removes the URL's secrets from s (errors of the net and websocket
// packages may quote the URL).
func (d *BotDialer) scrub(s string) string {
	for _, sec := range d.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "REDACTED")
			s = strings.ReplaceAll(s, url.QueryEscape(sec), "REDACTED")
		}
	}
	return s
}

// secretParam reports whether a query parameter name looks like it holds a
// credential (token, api_key, x-api-key, secret, password, sig, auth, …).
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "key", "secret", "pass", "pwd", "auth", "sig", "jwt", "credential", "session"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// RedactURL is u with its userinfo and the values of token-like query
// parameters replaced by REDACTED: safe to log.
func RedactURL(u *url.URL) string {
	r := *u
	if r.User != nil {
		r.User = url.User("REDACTED")
	}
	q := r.Query()
	changed := false
	for k := range q {
		if secretParam(k) {
			q[k] = []string{"REDACTED"}
			changed = true
		}
	}
	if changed {
		r.RawQuery = q.Encode()
	}
	return r.String()
}
