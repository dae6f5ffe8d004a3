package tts

// Internals for the external tests (package tts_test), which cannot be in
// package tts because they run the embedded server of tts/ttsserver, and
// ttsserver imports tts.

// SendsFinal reports whether c currently trusts the service to send isFinal.
func SendsFinal(c *Client) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendsFinal
}

// RedactURL is redactURL.
var RedactURL = redactURL
