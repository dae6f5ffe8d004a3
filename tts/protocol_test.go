package tts

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func f64(v float64) *float64 { return &v }

// TestClientMessages pins the exact JSON of every client message of both
// seeds, (ttsserver.TestClientMessagesAccepted checks that the strict server accepts
// each one).
func TestClientMessages(t *testing.T) {
	fas, mun := faseehDialect{}, munsitDialect{}
	full := ClientConfig{ModelID: "m1", VoiceID: "ar-najdi-male-2", OutputFormat: "pcm_16000",
		VoiceSettings: VoiceSettings{Stability: f64(0.5), SimilarityBoost: f64(0.75), Speed: f64(1)}}
	tests := []struct {
		name string
		d    Dialect
		msg  func() ([]byte, error)
		want string
	}{
		{"faseeh init", DialectFaseeh, func() ([]byte, error) {
			return fas.initMsg(&ClientConfig{ModelID: "m1", VoiceID: "v1"}, "")
		}, `{"type":"initConnection","model_id":"m1","voice_id":"v1"}`},
		{"faseeh init stability key", DialectFaseeh, func() ([]byte, error) {
			return fas.initMsg(&ClientConfig{ModelID: "m1", VoiceID: "v1", VoiceSettings: VoiceSettings{Stability: f64(0.5)}}, "k")
		}, `{"type":"initConnection","model_id":"m1","voice_id":"v1","voice_settings":{"stability":0.5},"x_api_key":"k"}`},
		{"faseeh legacy init", DialectFaseeh, func() ([]byte, error) {
			return fas.initMsg(&ClientConfig{ModelID: "m1", VoiceID: "v1", LegacyInit: true, VoiceSettings: VoiceSettings{Stability: f64(0.5)}}, "")
		}, `{"voice_id":"v1","model_id":"m1","stability":0.5}`},
		{"faseeh text no trigger", DialectFaseeh, func() ([]byte, error) { return fas.textMsg("مرحبا", false, false) },
			`{"type":"text","text":"مرحبا","try_trigger_generation":false}`},
		{"faseeh text trigger", DialectFaseeh, func() ([]byte, error) { return fas.textMsg("a", false, true) },
			`{"type":"text","text":"a","try_trigger_generation":true}`},
		{"faseeh text flush becomes trigger", DialectFaseeh, func() ([]byte, error) { return fas.textMsg("a", true, false) },
			`{"type":"text","text":"a","try_trigger_generation":true}`},
		{"faseeh closeConnection", DialectFaseeh, func() ([]byte, error) { return fas.closeMsg(), nil }, `{"type":"closeConnection"}`},
		{"munsit init minimal", DialectMunsit, func() ([]byte, error) {
			return mun.initMsg(&ClientConfig{VoiceID: "v1"}, "")
		}, `{"type":"initConnection","voice_id":"v1"}`},
		{"munsit init full", DialectMunsit, func() ([]byte, error) { return mun.initMsg(&full, "k") },
			`{"type":"initConnection","model_id":"m1","voice_id":"ar-najdi-male-2","voice_settings":{"stability":0.5,"similarity_boost":0.75,"speed":1},"output_format":"pcm_16000","x_api_key":"k"}`},
		{"munsit text", DialectMunsit, func() ([]byte, error) { return mun.textMsg("مرحبا بك في فصيح ", false, false) },
			`{"type":"text","text":"مرحبا بك في فصيح ","flush":false,"try_trigger_generation":false}`},
		{"munsit text flush trigger", DialectMunsit, func() ([]byte, error) { return mun.textMsg("a", true, true) },
			`{"type":"text","text":"a","flush":true,"try_trigger_generation":true}`},
		{"munsit clear", DialectMunsit, func() ([]byte, error) { return mun.clearMsg(), nil }, `{"type":"clear"}`},
		{"munsit closeConnection", DialectMunsit, func() ([]byte, error) { return mun.closeMsg(), nil }, `{"type":"closeConnection"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.msg()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if fas.clearMsg() != nil {
		t.Error("faseeh has no clear message")
	}
}

func TestDecodeServerMessage(t *testing.T) {
	var f frame
	check := func(name, msg string) *Error {
		t.Helper()
		return decodeServerMessage(DialectMunsit, []byte(msg), &f)
	}
	if err := check("audio", `{"audio":"AQIDBA==","sampleRate":24000,"isFinal":false}`); err != nil || f.kind != frameAudio || string(f.pcm) != "\x01\x02\x03\x04" || f.rate != 24000 || f.final {
		t.Fatalf("audio: %v %+v", err, f)
	}
	if err := check("escaped", `{"audio":"\/\/8=","sampleRate":16000}`); err != nil || string(f.pcm) != "\xff\xff" || f.rate != 16000 {
		t.Fatalf("escaped base64: %v %q", err, f.pcm)
	}
	if err := check("final", `{"audio":"","sampleRate":24000,"isFinal":true}`); err != nil || !f.final || len(f.pcm) != 0 {
		t.Fatalf("final: %v %+v", err, f)
	}
	if err := check("init", `{"type":"connectionInitialized"}`); err != nil || f.kind != frameInitialized {
		t.Fatalf("init: %v", err)
	}
	if err := check("faseeh error", `{"type":"error","message":"Insufficient balance"}`); err != nil || f.kind != frameError ||
		f.err.Code != "tts_error" || f.err.Message != "Insufficient balance" || !errors.Is(f.err, ErrService) {
		t.Fatalf("faseeh error: %v %+v", err, f.err)
	}
	if err := check("faseeh auth", `{"type":"error","message":"Invalid API key"}`); err != nil || !errors.Is(f.err, ErrAuth) {
		t.Fatalf("faseeh auth: %v %+v", err, f.err)
	}
	if err := check("munsit error", `{"type":"error","errorCode":40101,"errorMessage":"Invalid API key"}`); err != nil ||
		f.err.Code != "40101" || f.err.Message != "Invalid API key" || !errors.Is(f.err, ErrAuth) {
		t.Fatalf("munsit error: %v %+v", err, f.err)
	}
	if err := check("munsit 400", `{"type":"error","errorCode":40001,"errorMessage":"bad"}`); err != nil || !errors.Is(f.err, ErrProtocol) {
		t.Fatalf("munsit 40001: %v %+v", err, f.err)
	}
	var e *Error
	for _, bad := range []struct{ msg, want string }{
		{`{"audio":"AQID`, "bad JSON"},
		{`{"audio":"!!!!","sampleRate":24000}`, "bad base64"},
		{`{"audio":"AQIDBA==","sampleRate":44100}`, "unsupported sampleRate 44100"},
		{`{"audio":"AQIDBA==","sampleRate":24000.5}`, "unsupported sampleRate"},
		{`{"audio":"AQIDBA=="}`, "unsupported sampleRate 0"},
		{`{"audio":12,"sampleRate":24000}`, "not a string"},
		{`{"type":"audio"}`, "unknown message type"},
		{`{}`, "neither type nor audio"},
	} {
		err := check(bad.msg, bad.msg)
		if err == nil || !errors.As(error(err), &e) || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got %v, want protocol error %q", bad.msg, err, bad.want)
		}
	}
	if err := check("rate", `{"audio":"AQIDBA==","sampleRate":8}`); !errors.Is(err, ErrUnsupportedRate) {
		t.Errorf("unknown rate does not wrap ErrUnsupportedRate: %v", err)
	}
}

// FuzzDecodeServerMessage: whatever the service sends, the decoder returns
// a frame or an error, never panics, and a decoded audio frame is sane.
func FuzzDecodeServerMessage(f *testing.F) {
	for _, s := range []string{
		`{"audio":"AQIDBA==","sampleRate":24000,"isFinal":false}`,
		`{"audio":"","sampleRate":24000,"isFinal":true}`,
		`{"type":"connectionInitialized"}`,
		`{"type":"error","message":"x"}`,
		`{"type":"error","errorCode":40101,"errorMessage":"Invalid API key"}`,
		`{"audio":"\/\/8=","sampleRate":16000}`,
		`{"audio":null}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	var fr, slow frame
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fast path must agree with encoding/json wherever it decides.
		err1, err2 := asError(decodeServerMessage(DialectMunsit, data, &fr)), asError(decodeGeneral(DialectMunsit, data, &slow))
		if (err1 == nil) != (err2 == nil) || errors.Is(err1, ErrUnsupportedRate) != errors.Is(err2, ErrUnsupportedRate) {
			t.Fatalf("fast path %v, encoding/json %v for %q", err1, err2, data)
		}
		if err1 == nil && (fr.kind != slow.kind || !bytes.Equal(fr.pcm, slow.pcm) || fr.rate != slow.rate || fr.final != slow.final) {
			t.Fatalf("fast path %+v, encoding/json %+v for %q", fr, slow, data)
		}
		for _, d := range []Dialect{DialectFaseeh, DialectMunsit} {
			err := decodeServerMessage(d, data, &fr)
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("error does not wrap ErrProtocol: %v", err)
				}
				continue
			}
			switch fr.kind {
			case frameAudio:
				if len(fr.pcm) > 0 && !supportedRate(fr.rate) {
					t.Fatalf("audio at rate %d accepted", fr.rate)
				}
				if !json.Valid(data) {
					t.Fatal("invalid JSON accepted")
				}
			case frameError:
				if fr.err == nil {
					t.Fatal("error frame without error")
				}
			case frameInitialized:
			default:
				t.Fatalf("no kind and no error for %q", data)
			}
		}
	})
}

func TestFastAudio(t *testing.T) {
	for _, tt := range []struct {
		msg   string
		ok    bool
		rate  int
		final bool
	}{
		{`{"audio":"AQID","sampleRate":24000,"isFinal":false}`, true, 24000, false},
		{` { "isFinal" : true , "sampleRate" : 8000 , "audio" : "" } `, true, 8000, true},
		{`{"audio":"AQID","sampleRate":24000}`, true, 24000, false},
		{`{"audio":"AQID"}`, true, 0, false},
		{`{"audio":"\/\/8=","sampleRate":24000}`, false, 0, false},          // escape
		{`{"audio":"AQID","sampleRate":24000.0}`, false, 0, false},          // not an integer
		{`{"audio":"AQID","sampleRate":024000}`, false, 0, false},           // leading zero
		{`{"audio":"AQID","audio":"AQID","sampleRate":1}`, false, 0, false}, // duplicate
		{`{"audio":"AQID","type":"x"}`, false, 0, false},                    // other key
		{`{"audio":"AQID"} x`, false, 0, false},                             // trailing data
		{`{"Audio":"AQID"}`, false, 0, false},                               // encoding/json folds case
		{`{"sampleRate":24000}`, false, 0, false},                           // no audio
	} {
		_, rate, final, ok := fastAudio([]byte(tt.msg))
		if ok != tt.ok || ok && (rate != tt.rate || final != tt.final) {
			t.Errorf("fastAudio(%s) = %d %v %v, want %d %v %v", tt.msg, rate, final, ok, tt.rate, tt.final, tt.ok)
		}
	}
}

// asError avoids a typed nil in an error interface.
func asError(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}
