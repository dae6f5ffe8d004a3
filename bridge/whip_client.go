package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// The WHIP client side (RFC 9725) of a publish: POST the offer, follow
// redirects, take the 201 answer and its resource, DELETE the resource when
// the call ends. Nothing here logs or returns the token or a whole endpoint
// URL: a URL's userinfo, path and query may carry credentials (Cloudflare
// puts the stream key in the path), so messages name the endpoint by its
// host only.

const (
	// maxWHIPRedirects bounds the 307/308 hops of one publish.
	maxWHIPRedirects = 5
	// maxWHIPAnswer bounds the SDP answer's body, as maxSDPBody bounds offers.
	maxWHIPAnswer = maxSDPBody
)

// whipHTTP is the HTTP client of every WHIP exchange. Redirects are followed
// by publishWHIP itself (net/http would drop the Authorization header on a
// hop to another host, and a WHIP load balancer's 307 to a sibling node
// needs it). Connections are not kept alive: a call makes two requests
// minutes apart, and no idle connection (nor its goroutines) outlives them.
var whipHTTP = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the request's context
		DisableKeepAlives:     true,
		ForceAttemptHTTP2:     true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// whipTarget is the validated WHIP endpoint of a publish request.
type whipTarget struct {
	url   *url.URL
	token string // bearer token; "" sends no Authorization header
}

// whipResource is the WHIP session a publish created at the endpoint: the
// URL from the 201's Location (resolved against the request that got it),
// and what is needed to DELETE it.
type whipResource struct {
	url     *url.URL
	token   string
	timeout time.Duration
}

// whipInfo is the "whip" object of GET /v1/calls/{id}. The token is never
// in it; the resource URL is shown without userinfo.
type whipInfo struct {
	Resource string `json:"resource"`
}

// info returns the resource for GET (nil for a call that is not a publish).
func (r *whipResource) info() *whipInfo {
	if r == nil {
		return nil
	}
	return &whipInfo{Resource: withoutUserinfo(r.url)}
}

// withoutUserinfo returns u's text with any user:password removed.
func withoutUserinfo(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// publishWHIP POSTs offer to the target and returns the endpoint's SDP
// answer and the resource it created. timeout bounds the whole exchange,
// redirects included. Every error wraps ErrWHIPFailed and reads as a
// sentence a user understands. The resource is returned whenever the
// endpoint created one, even with an error (a 201 whose answer is garbage),
// so the caller can DELETE it.
func publishWHIP(ctx context.Context, log *slog.Logger, t whipTarget, offer string, timeout time.Duration) (answer string, res *whipResource, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := t.url
	for hop := 0; ; hop++ {
		resp, err := whipDo(ctx, http.MethodPost, u, t.token, offer)
		if err != nil {
			return "", nil, whipTransportError(ctx, err, u, timeout)
		}
		switch resp.StatusCode {
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			discard(resp)
			next, err := whipRedirect(u, resp, t.token, hop)
			if err != nil {
				return "", nil, err
			}
			log.Debug("WHIP endpoint redirected", "from", u.Host, "to", next.Host, "status", resp.StatusCode)
			u = next
			continue
		case http.StatusCreated:
			return whipCreated(log, u, resp, t)
		default:
			discard(resp)
			return "", nil, fmt.Errorf("%w: the WHIP endpoint at %s answered %s, not 201 Created%s",
				ErrWHIPFailed, u.Host, statusText(resp.StatusCode), statusHint(resp.StatusCode))
		}
	}
}

// whipDo sends one WHIP request. Its response body must be closed.
func whipDo(ctx context.Context, method string, u *url.URL, token, body string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Accept", "application/sdp")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return whipHTTP.Do(req)
}

// whipRedirect resolves a 307/308's Location against the request's URL and
// checks it: http(s) only, at most maxWHIPRedirects hops, and never from
// https to http while a token would travel in clear text.
func whipRedirect(from *url.URL, resp *http.Response, token string, hop int) (*url.URL, error) {
	if hop >= maxWHIPRedirects {
		return nil, fmt.Errorf("%w: the WHIP endpoint at %s redirected more than %d times", ErrWHIPFailed, from.Host, maxWHIPRedirects)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%w: the WHIP endpoint at %s answered %s without a Location to follow", ErrWHIPFailed, from.Host, statusText(resp.StatusCode))
	}
	next, err := from.Parse(loc)
	if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Host == "" {
		return nil, fmt.Errorf("%w: the WHIP endpoint at %s redirected to an address that is not an http(s) URL", ErrWHIPFailed, from.Host)
	}
	if token != "" && from.Scheme == "https" && next.Scheme == "http" {
		return nil, fmt.Errorf("%w: the WHIP endpoint at %s redirected from https to http; the token is not sent in clear text", ErrWHIPFailed, from.Host)
	}
	return next, nil
}

// whipCreated reads a 201: the resource from Location, then the SDP answer.
func whipCreated(log *slog.Logger, u *url.URL, resp *http.Response, t whipTarget) (string, *whipResource, error) {
	defer discard(resp)
	loc := resp.Header.Get("Location")
	if loc == "" {
		log.Warn("WHIP endpoint created a session without a Location: it cannot be deleted when the call ends", "endpoint", u.Host)
		return "", nil, fmt.Errorf("%w: the WHIP endpoint at %s answered 201 Created without a Location header (RFC 9725 requires the resource URL)", ErrWHIPFailed, u.Host)
	}
	resURL, err := u.Parse(loc)
	if err != nil || (resURL.Scheme != "http" && resURL.Scheme != "https") || resURL.Host == "" {
		return "", nil, fmt.Errorf("%w: the WHIP endpoint at %s answered with a Location that is not an http(s) URL", ErrWHIPFailed, u.Host)
	}
	res := &whipResource{url: resURL, token: t.token}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/sdp" {
			return "", res, fmt.Errorf("%w: the WHIP endpoint at %s answered 201 with Content-Type %q, not an SDP answer", ErrWHIPFailed, u.Host, ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWHIPAnswer+1))
	if err != nil {
		return "", res, fmt.Errorf("%w: reading the answer of the WHIP endpoint at %s: %v", ErrWHIPFailed, u.Host, innerError(err))
	}
	if len(body) > maxWHIPAnswer {
		return "", res, fmt.Errorf("%w: the WHIP endpoint at %s answered with an SDP over %d bytes", ErrWHIPFailed, u.Host, maxWHIPAnswer)
	}
	if err := checkAnswer(string(body)); err != nil {
		return "", res, fmt.Errorf("%w: the WHIP endpoint at %s answered 201 with %v", ErrWHIPFailed, u.Host, err)
	}
	return string(body), res, nil
}

// checkAnswer checks that an SDP answer parses and accepts the bridge's
// audio: an audio section with a port, recvonly or sendrecv, and Opus.
func checkAnswer(answer string) error {
	if strings.TrimSpace(answer) == "" {
		return errors.New("an empty body instead of an SDP answer")
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return fmt.Errorf("a body that is not SDP (%v)", err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		if d := direction(m); d == "sendonly" || d == "inactive" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), " opus/48000") {
				return nil
			}
		}
	}
	return errors.New("an SDP answer that does not accept the bridge's Opus audio")
}

// delete ends the WHIP session at the endpoint (RFC 9725 §4.2), bounded by
// the resource's timeout. A failure is logged, never fatal: the call is
// ending anyway.
func (r *whipResource) delete(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	resp, err := whipDo(ctx, http.MethodDelete, r.url, r.token, "")
	if err != nil {
		log.Warn("WHIP resource not deleted", "endpoint", r.url.Host, "err", whipTransportError(ctx, err, r.url, r.timeout))
		return
	}
	discard(resp)
	if resp.StatusCode/100 != 2 {
		log.Warn("WHIP resource not deleted", "endpoint", r.url.Host, "status", resp.StatusCode)
		return
	}
	log.Debug("WHIP resource deleted", "endpoint", r.url.Host, "status", resp.StatusCode)
}

// whipTransportError turns a failed round trip into a sentence naming the
// endpoint by host only: net/http's *url.Error carries the URL, path and
// query included, so only its inner error is used.
func whipTransportError(ctx context.Context, err error, u *url.URL, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: the WHIP endpoint at %s did not answer within %s", ErrWHIPFailed, u.Host, timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: the request was cancelled before the WHIP endpoint at %s answered", ErrWHIPFailed, u.Host)
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: cannot resolve the WHIP endpoint's host %s", ErrWHIPFailed, u.Hostname())
	case errors.As(err, &certErr):
		return fmt.Errorf("%w: the WHIP endpoint at %s presented a TLS certificate that is not trusted", ErrWHIPFailed, u.Host)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("%w: cannot connect to the WHIP endpoint at %s (%v)", ErrWHIPFailed, u.Host, innerError(opErr.Err))
	}
	return fmt.Errorf("%w: the WHIP endpoint at %s could not be reached (%v)", ErrWHIPFailed, u.Host, innerError(err))
}

// innerError strips net/http's *url.Error (which names the URL) and
// net.OpError's addresses, leaving the cause ("connection refused").
func innerError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err
}

// statusText is "401 Unauthorized".
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// statusHint says what a refusal most likely means.
func statusHint(code int) string {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (check whip.token)"
	case http.StatusNotFound:
		return " (check whip.url)"
	}
	return ""
}

// discard drains a little of a response body and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
}
