// Package web holds the browser voice-call demo page, embedded in the binary
// with go:embed and served by Handler. Nothing reads files at run time.
package web
