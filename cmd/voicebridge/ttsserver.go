package main

import (
	"context"
	"errors"
	"io"
)

// runTTSServer runs the embedded TTS alone: voicebridge tts-server.
func runTTSServer(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	return errors.New("tts-server: not available in this build yet")
}
