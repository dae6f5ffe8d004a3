package bridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// authorized reports whether r carries the bearer token: the Authorization
// header, or for WebSocket upgrades (browsers cannot set headers on them)
// the token query parameter. The comparison is constant-time over SHA-256
// digests, so neither the token's bytes nor its length leak through timing.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIToken == "" {
		return true
	}
	got, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok && websocketUpgrade(r) {
		got, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// bearerToken extracts the token of an "Authorization: Bearer TOKEN" header
// (the scheme is case-insensitive, RFC 6750 §2.1).
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}

// websocketUpgrade reports whether r asks for a WebSocket upgrade.
func websocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// originAllowed reports whether r's Origin may use the API: no Origin (not a
// browser), the bridge's own origin (same host as the request), or one of
// Config.AllowedOrigins. It is also the WebSocket upgrader's CheckOrigin.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if s.anyOrigin || s.origins[normalizeOrigin(origin)] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// normalizeOrigin lower-cases an origin and drops a trailing slash.
func normalizeOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

// v1 wraps the /v1/ API: the origin check, CORS for allowed foreign origins
// (with preflight), then the bearer token. Preflights carry no credentials,
// so they are answered before the token check.
func (s *Server) v1(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.originAllowed(r) {
			writeError(w, r, s.log, ErrOriginNotAllowed)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Location")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if !s.authorized(r) {
			writeError(w, r, s.log, ErrUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// redactURL returns rawURL without user info and query (where API keys
// travel), for logs.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment = ""
	return u.String()
}
