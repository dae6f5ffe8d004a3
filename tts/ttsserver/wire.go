package ttsserver

// Service-to-client messages the server writes, in each dialect's shape
// (the seeds' "Response Types").

var msgConnectionInitialized = []byte(`{"type":"connectionInitialized"}`)

// faseehError is faseeh's error: {"type":"error","message":...}.
type faseehError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// munsitError is munsit's error: {"type":"error","errorCode":...,"errorMessage":...}.
type munsitError struct {
	Type         string `json:"type"`
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// supportedRate reports whether r is a rate the seeds allow.
func supportedRate(r int) bool {
	return r == 8000 || r == 16000 || r == 22050 || r == 24000
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
