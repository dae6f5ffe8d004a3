package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/pion/webrtc/v4"
)

// maxWHIPToken bounds whip.token (a LiveKit ingress token, a JWT, is well
// under 2 KiB).
const maxWHIPToken = 8 << 10

// whipRequest is the "whip" object of POST /v1/calls (application/json): the
// bridge offers to that WHIP endpoint instead of answering an offer.
type whipRequest struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// target validates the request: an absolute http(s) URL, and a token that
// can travel in an Authorization header. Messages never quote either (the
// URL may carry userinfo or a key in its path).
func (w *whipRequest) target() (whipTarget, error) {
	if w.URL == "" {
		return whipTarget{}, fmt.Errorf("%w: whip.url: required", ErrInvalidField)
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return whipTarget{}, fmt.Errorf("%w: whip.url: must be an absolute http:// or https:// URL", ErrInvalidField)
	}
	if len(w.Token) > maxWHIPToken {
		return whipTarget{}, fmt.Errorf("%w: whip.token: longer than %d bytes", ErrInvalidField, maxWHIPToken)
	}
	for i := 0; i < len(w.Token); i++ {
		if c := w.Token[i]; c <= ' ' || c >= 0x7f {
			return whipTarget{}, fmt.Errorf("%w: whip.token: only visible ASCII characters, no spaces", ErrInvalidField)
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return whipTarget{url: u, token: w.Token}, nil
}

// whipPublisher is the role of a call the bridge publishes into an SFU: it
// makes the offer (sendonly Opus, ICE gathering complete), POSTs it to the
// WHIP endpoint and applies the 201 answer.
type whipPublisher struct{ target whipTarget }

func (p whipPublisher) check() error { return nil } // target() validated it

// direction: the offer publishes the bot's audio only (sendonly).
func (p whipPublisher) direction() webrtc.RTPTransceiverDirection {
	return webrtc.RTPTransceiverDirectionSendonly
}

func (p whipPublisher) rejectReason(err error) string {
	if errors.Is(err, ErrWHIPFailed) {
		return "whip"
	}
	return rejectReason(err)
}

func (p whipPublisher) negotiate(ctx context.Context, c *Session) (string, error) {
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("create offer: %w", err)
	}
	// Dial the TTS while ICE gathers, as an answered call does.
	if err := c.setLocalAndDialTTS(ctx, offer); err != nil {
		return "", err
	}
	timeout := c.srv.cfg.WHIPTimeout
	answer, res, err := publishWHIP(ctx, c.log, p.target, c.pc.LocalDescription().SDP, timeout)
	if res != nil {
		res.timeout = timeout
		c.whip = res // teardown deletes it, whatever happens next
	}
	if err != nil {
		return "", err
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return "", fmt.Errorf("%w: the WHIP endpoint at %s answered an SDP the bridge cannot apply (%v)", ErrWHIPFailed, p.target.url.Host, err)
	}
	c.log.Info("published over WHIP", "endpoint", p.target.url.Host, "resource_host", res.url.Host)
	return "", nil
}

// deleteWHIP ends the call's WHIP session at the endpoint, if it has one.
func (c *Session) deleteWHIP() {
	if c.whip != nil {
		c.whip.delete(c.log)
	}
}
