package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/voicebridge/voicebridge/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// get fetches path from web.Handler and returns the response and its body.
func get(t *testing.T, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHandlerServesEmbeddedFiles(t *testing.T) {
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", "مرحبا بك في فصيح كيف يمكنني مساعدتك اليوم"},
		{"/app.js", "text/javascript; charset=utf-8", "window, 'voicebridgeDemo'"},
		{"/style.css", "text/css; charset=utf-8", "prefers-color-scheme"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, http.MethodGet, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d", tc.path, resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("GET %s: Content-Security-Policy %q lacks %q", tc.path, csp, want)
				}
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q", tc.path, got)
			}
		})
	}
}

func TestHandlerRejectsOtherMethodsAndUnknownFiles(t *testing.T) {
	resp, _ := get(t, http.MethodPost, "/")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d, Allow %q; want 405, \"GET, HEAD\"", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = get(t, http.MethodGet, "/web.go")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /web.go: status %d, want 404 (only the page's files are embedded)", resp.StatusCode)
	}
	resp, body := get(t, http.MethodHead, "/")
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /: status %d, %d body bytes", resp.StatusCode, len(body))
	}
}

// TestPageLoadsNothingFromElsewhere: no CDN, no inline script, no absolute
// URL in a src/href/url(), so the page works on a closed network.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|import\s*\(|@import`)
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		_, body := get(t, http.MethodGet, path)
		if m := external.FindString(body); m != "" {
			t.Errorf("%s refers to another origin: %q", path, m)
		}
	}
	_, html := get(t, http.MethodGet, "/")
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0], `src="app.js"`) {
		t.Errorf("index.html scripts = %q, want one <script src=\"app.js\">", scripts)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, " on"+"click=") {
		t.Error("index.html has inline script; the Content-Security-Policy forbids it")
	}
}
