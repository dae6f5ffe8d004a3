package bridge

// classifyTTS maps errors of package tts: a TTS refusal passes the service's
// own code and message on with 502; a field error is a 400 naming the field.
func classifyTTS(err error) (status int, code, msg string, ok bool) {
	return 0, "", "", false
}
