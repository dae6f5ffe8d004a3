package web

import (
	"embed"
	"net/http"
)

// assets are the demo page's files, compiled into the binary.
//
//go:embed index.html app.js style.css
var assets embed.FS

// contentSecurityPolicy keeps the page honest about what it loads: its own
// files only (no CDN, no inline script), fetch and WebSocket to its own
// origin, and the remote WebRTC audio stream in the audio element.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the handler of the demo page: index.html at "/", app.js and
// style.css next to it, from files embedded in the binary. It answers GET and
// HEAD only (405 otherwise) and adds a Content-Security-Policy that forbids
// loading anything from another origin. The page itself holds no secret: it
// learns the server's defaults from /config.json and asks the user for the API
// token when the server needs one.
//
// Handler is safe for concurrent use; each call returns a new handler over
// the same embedded files.
func Handler() http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Embedded files have no modification time, so no validators:
		// ask browsers to revalidate so a new binary's page is picked up.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
