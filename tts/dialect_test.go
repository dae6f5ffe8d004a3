package tts

import "testing"

func TestInferDialect(t *testing.T) {
	tests := []struct {
		url  string
		want Dialect
	}{
		{"wss://api.munsit.ai/api/v1/websocket/text-to-speech", DialectMunsit},
		{"wss://api.munsit.ai/api/v1/websocket/text-to-speech?x-api-key=k", DialectMunsit},
		{"wss://api.faseeh.com/api/v1/text-to-speech", DialectFaseeh},
		{"ws://127.0.0.1:9000/api/v1/text-to-speech?next=/websocket/", DialectFaseeh}, // query is not the path
		{"ws://127.0.0.1:9000/websocket/", DialectMunsit},
		{"ws://127.0.0.1:9000/websocket", DialectFaseeh}, // the rule needs both slashes
		{"", DialectFaseeh},
	}
	for _, tt := range tests {
		if got := InferDialect(tt.url); got != tt.want {
			t.Errorf("InferDialect(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestParseDialect(t *testing.T) {
	for in, want := range map[string]Dialect{"": "", "faseeh": DialectFaseeh, "MUNSIT": DialectMunsit, " munsit ": DialectMunsit} {
		got, err := ParseDialect(in)
		if err != nil || got != want {
			t.Errorf("ParseDialect(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseDialect("elevenlabs"); err == nil {
		t.Error("ParseDialect(elevenlabs): want an error")
	}
}
