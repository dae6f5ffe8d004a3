package bridge

import (
	"errors"
	"net/http"

	"github.com/voicebridge/voicebridge/media"
	"github.com/voicebridge/voicebridge/tts"
)

// classifyTTS maps errors of packages tts and media. A refusal by the TTS
// service (auth, balance, bad voice...) passes the service's own code and
// message on with 502; an unreachable service is 502 tts_unavailable with a
// message that names no host; a field error is a 400 naming the field.
func classifyTTS(err error) (status int, code, msg string, ok bool) {
	var fe *tts.FieldError
	if errors.As(err, &fe) {
		return http.StatusBadRequest, "invalid_field", fe.Field + ": " + fe.Message, true
	}
	var te *tts.Error
	if errors.As(err, &te) {
		if errors.Is(te, tts.ErrNetwork) {
			return http.StatusBadGateway, "tts_unavailable", "the TTS service could not be reached", true
		}
		code = te.Code
		if code == "" {
			code = "tts_error"
		}
		return http.StatusBadGateway, code, te.Message, true
	}
	if errors.Is(err, media.ErrUnsupportedRate) {
		return http.StatusBadGateway, "tts_unsupported_rate", "the TTS sent audio at an unsupported sample rate", true
	}
	return 0, "", "", false
}
