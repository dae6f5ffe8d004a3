package sip

import (
	"context"
	"errors"

	siplib "github.com/emiago/sipgo/sip"
)

// statusOf maps an error rejecting an INVITE to its SIP final response.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, ErrNoAudio), errors.Is(err, ErrNoCommonCodec), errors.Is(err, ErrCodecNotOffered):
		return siplib.StatusNotAcceptableHere, "Not Acceptable Here"
	case errors.Is(err, ErrBadSDP):
		return siplib.StatusBadRequest, "Bad Request"
	case errors.Is(err, ErrBusy), errors.Is(err, ErrUnavailable), errors.Is(err, ErrShutdown), errors.Is(err, ErrLocalHangup),
		errors.Is(err, context.DeadlineExceeded):
		return siplib.StatusServiceUnavailable, "Service Unavailable"
	}
	return siplib.StatusInternalServerError, "Server Internal Error"
}
