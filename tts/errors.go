package tts

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sentinels. Every error this package returns matches at most one of the
// first three with errors.Is; *Error and *FieldError carry the detail.
var (
	// ErrAuth: the service refused the API key (munsit 401xx, faseeh's
	// auth wording, or HTTP 401/403 on the WebSocket handshake).
	ErrAuth = errors.New("tts: authentication refused")
	// ErrNetwork: the connection could not be made or was lost.
	ErrNetwork = errors.New("tts: network error")
	// ErrProtocol: the peer broke the protocol (bad JSON, bad base64, an
	// unknown sampleRate, an over-limit message, a missing
	// connectionInitialized, or a message the dialect does not define).
	ErrProtocol = errors.New("tts: protocol violation")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("tts: client closed")
	// ErrInvalidConfig is wrapped by configuration errors that are not a
	// single field out of range.
	ErrInvalidConfig = errors.New("tts: invalid config")
	// ErrUnsupportedRate: a chunk's sampleRate is not 8000, 16000, 22050 or
	// 24000. It is wrapped by the *Error (Code "protocol_error") reported.
	ErrUnsupportedRate = errors.New("tts: unsupported sample rate")
	// ErrService: the service sent an error message that is neither an auth
	// refusal nor a protocol complaint (e.g. insufficient balance).
	ErrService = errors.New("tts: service error")
)

// Error is an error from the TTS service or about the connection to it.
//
// A service error message ({"type":"error","message"} for faseeh,
// {"type":"error","errorCode","errorMessage"} for munsit) becomes an Error
// whose Code is munsit's errorCode as a decimal string ("40101") or, for
// faseeh, "tts_error" ("auth_error" when the wording is about the key).
// Errors found by the client use the codes "network_error",
// "protocol_error", "http_401" (any refused handshake: "http_NNN").
//
// errors.Is(err, ErrAuth|ErrNetwork|ErrProtocol|ErrService) tells the
// classes apart. Message never contains the API key.
type Error struct {
	Code    string
	Message string
	Dialect Dialect
	// Status is the HTTP status of a refused WebSocket handshake, else 0.
	Status int

	kind  error // one of the sentinels
	cause error // underlying error, if any (already free of the key)
}

// Error implements error: "tts: munsit error 40101: Invalid API key".
func (e *Error) Error() string {
	d := string(e.Dialect)
	if d == "" {
		d = "service"
	}
	return fmt.Sprintf("tts: %s error %s: %s", d, e.Code, e.Message)
}

// Unwrap returns the class sentinel and the underlying cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// FieldError is a configuration or request field that is missing or out of
// range. The bridge maps it to HTTP 400.
type FieldError struct {
	Field   string // JSON name, e.g. "voice_settings.speed"
	Message string // e.g. "must be between 0.7 and 1.2"
}

// Error implements error: "tts: voice_settings.speed: must be between 0.7 and 1.2".
func (e *FieldError) Error() string { return "tts: " + e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalidConfig) true for field errors too.
func (e *FieldError) Unwrap() error { return ErrInvalidConfig }

func protocolError(d Dialect, format string, args ...any) *Error {
	return &Error{Code: "protocol_error", Message: fmt.Sprintf(format, args...), Dialect: d, kind: ErrProtocol}
}

func networkError(d Dialect, msg string, cause error, key string) *Error {
	m := msg
	if cause != nil {
		m += ": " + cause.Error()
	}
	return &Error{Code: "network_error", Message: redact(m, key), Dialect: d, kind: ErrNetwork, cause: safeCause(cause, key)}
}

// safeCause keeps cause for errors.Is/As unless its text would leak key.
func safeCause(cause error, key string) error {
	if cause == nil || key == "" || redact(cause.Error(), key) == cause.Error() {
		return cause
	}
	return nil
}

// redact removes every occurrence of key (and its URL-escaped forms) from s.
func redact(s, key string) string {
	if key == "" {
		return s
	}
	for _, k := range []string{key, url.QueryEscape(key), url.PathEscape(key)} {
		s = strings.ReplaceAll(s, k, "REDACTED")
	}
	return s
}

// redactKey removes key from the message of an error the service sent (a
// service may quote the key it refused); the message is passed on to logs,
// bots and HTTP clients.
func (e *Error) redactKey(key string) {
	if e != nil {
		e.Message = redact(e.Message, key)
	}
}

// authWords are faseeh error wordings that mean the key was refused; the
// seed gives no codes, so the wording is all there is.
var authWords = []string{"api key", "api_key", "apikey", "unauthorized", "unauthorised", "authentication", "forbidden", "x-api-key"}

// serviceError classifies an error message from the service.
func serviceError(d Dialect, code, msg string) *Error {
	e := &Error{Code: code, Message: msg, Dialect: d, kind: ErrService}
	switch d {
	case DialectMunsit:
		switch {
		case strings.HasPrefix(code, "401") || strings.HasPrefix(code, "403"):
			e.kind = ErrAuth
		case strings.HasPrefix(code, "400"):
			e.kind = ErrProtocol
		}
	default:
		lm := strings.ToLower(msg)
		for _, w := range authWords {
			if strings.Contains(lm, w) {
				e.kind = ErrAuth
				e.Code = "auth_error"
				break
			}
		}
	}
	return e
}
