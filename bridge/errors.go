package bridge

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
)

// Sentinel errors. Handlers return them (wrapped with detail); writeError maps
// them to an HTTP status and a stable code in one table, errorTable.
var (
	// ErrBadJSON: a request body that is not the JSON the endpoint expects.
	ErrBadJSON = errors.New("bridge: bad JSON")
	// ErrInvalidSDP: an offer that does not parse or that Pion refuses.
	ErrInvalidSDP = errors.New("bridge: invalid SDP offer")
	// ErrNoAudio: an offer with no audio section that can receive (recvonly
	// or sendrecv) Opus.
	ErrNoAudio = errors.New("bridge: offer cannot receive Opus audio")
	// ErrInvalidField: a call option or message field out of range.
	ErrInvalidField = errors.New("bridge: invalid field")
	// ErrNotWebSocket: a plain HTTP request to the bot WebSocket endpoint.
	ErrNotWebSocket = errors.New("bridge: WebSocket upgrade required")
	// ErrUnauthorized: a missing or wrong bearer token.
	ErrUnauthorized = errors.New("bridge: missing or wrong token")
	// ErrOriginNotAllowed: a browser request from an origin that is neither
	// the bridge's own nor in Config.AllowedOrigins.
	ErrOriginNotAllowed = errors.New("bridge: origin not allowed")
	// ErrCallNotFound: no call with that id (never existed, or ended).
	ErrCallNotFound = errors.New("bridge: call not found")
	// ErrRouteNotFound: no such endpoint.
	ErrRouteNotFound = errors.New("bridge: not found")
	// ErrMethodNotAllowed: the endpoint exists but not with that method.
	ErrMethodNotAllowed = errors.New("bridge: method not allowed")
	// ErrBodyTooLarge: a request body over its limit (SDP 64 KiB, text 16 KiB).
	ErrBodyTooLarge = errors.New("bridge: request body too large")
	// ErrUnsupportedMediaType: a Content-Type the endpoint does not take.
	ErrUnsupportedMediaType = errors.New("bridge: unsupported content type")
	// ErrTextBufferFull: the call already holds Config.MaxPendingText bytes of
	// text that has not been spoken yet.
	ErrTextBufferFull = errors.New("bridge: too much text waiting to be spoken")
	// ErrTTSUnavailable: the TTS service could not be reached or did not
	// answer initConnection in time.
	ErrTTSUnavailable = errors.New("bridge: TTS service unavailable")
	// ErrWHIPFailed: the WHIP endpoint of a publish could not be reached,
	// refused the offer (its status is in the message), or answered
	// something that is not a usable SDP answer with a resource.
	ErrWHIPFailed = errors.New("bridge: WHIP publish failed")
	// ErrDTMFNotNegotiated: DTMF for a call whose peer did not negotiate
	// telephone-event.
	ErrDTMFNotNegotiated = errors.New("bridge: the peer did not negotiate telephone-event")
	// ErrAtCapacity: Config.MaxCalls calls are running.
	ErrAtCapacity = errors.New("bridge: too many calls")
	// ErrShuttingDown: the server is shutting down and takes no new calls.
	ErrShuttingDown = errors.New("bridge: shutting down")

	// Causes a call ends with (context.Cause of its context, and the
	// "reason" of the bot's closed event).

	// ErrHangup: DELETE /v1/calls/{id}.
	ErrHangup = errors.New("hangup")
	// ErrBotClosed: the bot sent closeConnection.
	ErrBotClosed = errors.New("bot sent closeConnection")
	// ErrPeerClosed: the peer connection closed (the client hung up).
	ErrPeerClosed = errors.New("peer connection closed")
	// ErrPeerFailed: the peer connection failed (ICE or DTLS).
	ErrPeerFailed = errors.New("peer connection failed")
	// ErrPeerDisconnected: the peer connection stayed disconnected longer
	// than Config.DisconnectedTimeout (the client vanished).
	ErrPeerDisconnected = errors.New("peer connection disconnected too long")
	// ErrConnectTimeout: the client never connected within
	// Config.ConnectTimeout of the answer.
	ErrConnectTimeout = errors.New("peer never connected")
	// ErrShutdown: the server shut down.
	ErrShutdown = errors.New("server shutdown")
)

// errorTable maps sentinels to HTTP statuses and stable codes: the only place
// statuses are chosen. Order matters only where an error wraps two entries.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{ErrBadJSON, http.StatusBadRequest, "bad_json"},
	{ErrInvalidSDP, http.StatusBadRequest, "invalid_sdp"},
	{ErrNoAudio, http.StatusBadRequest, "offer_without_audio"},
	{ErrInvalidField, http.StatusBadRequest, "invalid_field"},
	{ErrNotWebSocket, http.StatusBadRequest, "websocket_required"},
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrOriginNotAllowed, http.StatusForbidden, "origin_not_allowed"},
	{ErrCallNotFound, http.StatusNotFound, "call_not_found"},
	{ErrRouteNotFound, http.StatusNotFound, "not_found"},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed"},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{ErrTextBufferFull, http.StatusTooManyRequests, "text_buffer_full"},
	{ErrDTMFNotNegotiated, http.StatusConflict, "dtmf_not_negotiated"},
	{ErrCodecNotOffered, http.StatusBadRequest, "codec_not_offered"},
	{ErrTTSUnavailable, http.StatusBadGateway, "tts_unavailable"},
	{ErrWHIPFailed, http.StatusBadGateway, "whip_failed"},
	{ErrAtCapacity, http.StatusServiceUnavailable, "max_calls"},
	{ErrShuttingDown, http.StatusServiceUnavailable, "shutting_down"},
}

// apiError is the body of every error response (the contract's shape).
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify returns the status, code and client-safe message for err. The
// message of a known error is its text without the "bridge: " prefix;
// unknown errors become a 500 "internal error" whose detail only goes to the
// log. A TTS refusal (*tts.Error) passes the service's own code and message
// on with 502; a *tts.FieldError is a 400 naming the field.
func classify(err error) (status int, code, msg string) {
	if status, code, msg, ok := classifyTTS(err); ok {
		return status, code, msg
	}
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return http.StatusRequestEntityTooLarge, "body_too_large",
			"request body too large (limit " + strconv.FormatInt(maxBytes.Limit, 10) + " bytes)"
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.code, publicMessage(err)
		}
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

// publicMessage strips the package prefix from a known error's text. Known
// errors are built by this package from sentinels and client input only, so
// their text is safe to return.
func publicMessage(err error) string {
	s := err.Error()
	const prefix = "bridge: "
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		s = s[len(prefix):]
	}
	return s
}

// writeError writes err as the contract's JSON error with its status, from
// the one table. 5xx errors are logged with their detail; nothing secret is
// in a response because only known errors' text is returned.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, code, msg := classify(err)
	if status >= 500 {
		log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", code)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="voicebridge"`)
	}
	writeJSON(w, status, apiError{apiErrorBody{Code: code, Message: msg}})
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
