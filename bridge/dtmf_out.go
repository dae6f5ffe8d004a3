package bridge

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/voicebridge/voicebridge/media"
)

// maxDTMFBody bounds POST /v1/calls/{id}/dtmf bodies.
const maxDTMFBody = 4 << 10

// dtmfRequest is POST /v1/calls/{id}/dtmf's body (and the bot's dtmf
// message's fields).
type dtmfRequest struct {
	Digits     string `json:"digits"`
	DurationMS *int   `json:"duration_ms"`
	GapMS      *int   `json:"gap_ms"`
}

// handleDTMF queues digits for the caller: 202, or 400 (bad digits or
// timing), 409 dtmf_not_negotiated.
func (s *Server) handleDTMF(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if mt, err := mediaType(r); err != nil || mt != "application/json" {
		if err == nil {
			err = fmt.Errorf("%w: %q (want application/json)", ErrUnsupportedMediaType, mt)
		}
		writeError(w, r, s.log, err)
		return
	}
	var req dtmfRequest
	if err := decodeJSON(w, r, maxDTMFBody, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := c.sendDTMF(req.Digits, req.DurationMS, req.GapMS); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// sendDTMF validates and queues digits on the call's stream (RFC 4733 on
// the audio SSRC, see media.Stream.SendDTMF). Absent durations take the
// contract's defaults; present ones must be 40..2000 ms.
func (c *Session) sendDTMF(digits string, durationMS, gapMS *int) error {
	dur, gap := media.DefaultDTMFDuration, media.DefaultDTMFGap
	for _, f := range []struct {
		name string
		v    *int
		d    *time.Duration
	}{{"duration_ms", durationMS, &dur}, {"gap_ms", gapMS, &gap}} {
		if f.v == nil {
			continue
		}
		if *f.v < 40 || *f.v > 2000 {
			return fmt.Errorf("%w: %s: must be 40 to 2000", ErrInvalidField, f.name)
		}
		*f.d = time.Duration(*f.v) * time.Millisecond
	}
	if !c.dtmfNegotiated() {
		return fmt.Errorf("%w: DTMF cannot be sent on this call", ErrDTMFNotNegotiated)
	}
	err := c.stream.SendDTMF(digits, dur, gap)
	switch {
	case errors.Is(err, media.ErrInvalidDTMF), errors.Is(err, media.ErrDTMFQueueFull):
		return fmt.Errorf("%w: %v", ErrInvalidField, trimMedia(err))
	case errors.Is(err, media.ErrClosed):
		return ErrCallNotFound
	}
	return err
}

// dtmfNegotiated reports whether the peer takes telephone-event at the
// codec's clock rate: from the track's binding once bound, else from
// what the sender negotiated in the SDP exchange.
func (c *Session) dtmfNegotiated() bool {
	if c.sip != nil { // a SIP call: its offer had telephone-event (sipcall.go)
		return c.sip.call.Media().HasDTMF
	}
	if bound, ok := c.track.dtmfState(); bound {
		return ok
	}
	if c.sender == nil {
		return false
	}
	for _, p := range c.sender.GetParameters().Codecs {
		if equalFoldMime(p.MimeType, telephoneEventMime) && p.ClockRate == c.track.codec.ClockRate {
			return true
		}
	}
	return false
}

// trimMedia drops media's "media: " prefix from an error's text.
func trimMedia(err error) string {
	s := err.Error()
	const prefix = "media: "
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}
