package tts

import (
	"fmt"
	"net/url"
	"strings"
)

// Dialect names one of the two variants of the TTS WebSocket protocol.
type Dialect string

const (
	// DialectFaseeh is the protocol of api.faseeh.com: key in the x-api-key
	// header, text messages without "flush", no "clear", "isFinal" chunks and
	// {"type":"error","message":...} errors.
	DialectFaseeh Dialect = "faseeh"
	// DialectMunsit is the protocol of api.munsit.ai: key in initConnection
	// or the query string, "flush" and "clear", output_format, and
	// {"type":"error","errorCode":...,"errorMessage":...} errors.
	DialectMunsit Dialect = "munsit"
)

// InferDialect returns the dialect a TTS URL speaks: a path containing
// "/websocket/" is Munsit, anything else Faseeh (the rule of the public
// contract). An unparsable URL is inferred from its raw text.
func InferDialect(rawURL string) Dialect {
	path := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		path = u.Path
	}
	if strings.Contains(path, "/websocket/") {
		return DialectMunsit
	}
	return DialectFaseeh
}

// ParseDialect accepts "faseeh" or "munsit" (any case). The empty string is
// returned as the empty Dialect, meaning "infer from the URL".
func ParseDialect(s string) (Dialect, error) {
	switch d := Dialect(strings.ToLower(strings.TrimSpace(s))); d {
	case "", DialectFaseeh, DialectMunsit:
		return d, nil
	default:
		return "", fmt.Errorf("tts: unknown dialect %q (want %q or %q)", s, DialectFaseeh, DialectMunsit)
	}
}
