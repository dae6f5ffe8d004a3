// Package web holds the browser voice-call demo page, embedded in the binary
// with go:embed and served by Handler. Nothing reads files at run time.
//
// The page (index.html, app.js, style.css; plain JavaScript, no build step)
// uses only the public API: GET /config.json, POST and DELETE /v1/calls,
// POST /v1/calls/{id}/text and /clear, and the bot WebSocket
// /v1/calls/{id}/ws. It exposes a read-only view of its state for tests and
// the console, window.voicebridgeDemo = {state, events, stats}, which the
// browser test (browser_test.go, Debian's chromium driven with chromedp)
// reads instead of scraping the DOM.
package web
