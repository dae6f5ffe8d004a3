package ttsserver

import (
	"strings"
	"testing"

	"github.com/voicebridge/voicebridge/tts"
)

// TestServerStrict: what a strict service refuses, per dialect.
func TestServerStrict(t *testing.T) {
	tests := []struct {
		d    tts.Dialect
		msg  string
		want string // substring of the error
	}{
		{tts.DialectFaseeh, `{"type":"text","text":"a"}`, `missing required field "try_trigger_generation"`},
		{tts.DialectFaseeh, `{"type":"text","text":"a","try_trigger_generation":true,"flush":true}`, `unknown field "flush"`},
		{tts.DialectFaseeh, `{"type":"clear"}`, `unknown message type "clear"`},
		{tts.DialectFaseeh, `{"type":"initConnection","voice_id":"v"}`, `missing required field "model_id"`},
		{tts.DialectFaseeh, `{"type":"initConnection","model_id":"m","voice_id":"v","voice_settings":{"speed":1}}`, `unknown field "speed" in voice_settings`},
		{tts.DialectFaseeh, `{"type":"initConnection","model_id":"m","voice_id":"v","output_format":"pcm_8000"}`, `unknown field "output_format"`},
		{tts.DialectFaseeh, `{"type":"initConnection","model_id":"m","voice_id":"v","voice_settings":{"stability":1.5}}`, `between 0 and 1`},
		{tts.DialectFaseeh, `{"voice_id":"v"}`, `missing required field "model_id" in legacy init`},
		{tts.DialectFaseeh, `{"type":"text","text":"a","try_trigger_generation":"yes"}`, `must be a boolean`},
		{tts.DialectMunsit, `{"voice_id":"v","model_id":"m"}`, `missing required field "type"`},
		{tts.DialectMunsit, `{"type":"initConnection"}`, `missing required field "voice_id"`},
		{tts.DialectMunsit, `{"type":"initConnection","voice_id":"v","output_format":"mp3_44100"}`, `output_format`},
		{tts.DialectMunsit, `{"type":"initConnection","voice_id":"v","voice_settings":{"speed":1.3}}`, `between 0.7 and 1.2`},
		{tts.DialectMunsit, `{"type":"initConnection","voice_id":"v","voice_settings":{"similarity_boost":-0.1}}`, `between 0 and 1`},
		{tts.DialectMunsit, `{"type":"initConnection","voice_id":"v","voice_settings":{"style":1}}`, `unknown field "style"`},
		{tts.DialectMunsit, `{"type":"text"}`, `missing required field "text"`},
		{tts.DialectMunsit, `{"type":"text","text":"a","isFinal":true}`, `unknown field "isFinal"`},
		{tts.DialectMunsit, `{"type":"flush"}`, `unknown message type "flush"`},
		{tts.DialectMunsit, `{"type":"clear","text":""}`, `unknown field "text"`},
		{tts.DialectMunsit, `{"type":7}`, `"type" must be a string`},
		{tts.DialectMunsit, `[1,2]`, `invalid JSON`},
		{tts.DialectMunsit, `{"type":"clear"} {}`, `trailing data`},
		{tts.DialectMunsit, `not json`, `invalid JSON`},
	}
	for _, tt := range tests {
		_, err := parseClientMessage(tt.d, []byte(tt.msg))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: got %v, want error containing %q", tt.d, tt.msg, err, tt.want)
		}
	}
}

// TestClientMessagesAccepted: every client message of both seeds, exactly
// as package tts pins it (tts.TestClientMessages), is accepted.
func TestClientMessagesAccepted(t *testing.T) {
	tests := []struct {
		d   tts.Dialect
		msg string
	}{
		{tts.DialectFaseeh, `{"type":"initConnection","model_id":"m1","voice_id":"v1"}`},
		{tts.DialectFaseeh, `{"type":"initConnection","model_id":"m1","voice_id":"v1","voice_settings":{"stability":0.5},"x_api_key":"k"}`},
		{tts.DialectFaseeh, `{"voice_id":"v1","model_id":"m1","stability":0.5}`},
		{tts.DialectFaseeh, `{"type":"text","text":"مرحبا","try_trigger_generation":false}`},
		{tts.DialectFaseeh, `{"type":"text","text":"a","try_trigger_generation":true}`},
		{tts.DialectFaseeh, `{"type":"closeConnection"}`},
		{tts.DialectMunsit, `{"type":"initConnection","voice_id":"v1"}`},
		{tts.DialectMunsit, `{"type":"initConnection","model_id":"m1","voice_id":"ar-najdi-male-2","voice_settings":{"stability":0.5,"similarity_boost":0.75,"speed":1},"output_format":"pcm_16000","x_api_key":"k"}`},
		{tts.DialectMunsit, `{"type":"text","text":"مرحبا بك في فصيح ","flush":false,"try_trigger_generation":false}`},
		{tts.DialectMunsit, `{"type":"text","text":"a","flush":true,"try_trigger_generation":true}`},
		{tts.DialectMunsit, `{"type":"clear"}`},
		{tts.DialectMunsit, `{"type":"closeConnection"}`},
	}
	for _, tt := range tests {
		if _, err := parseClientMessage(tt.d, []byte(tt.msg)); err != nil {
			t.Errorf("strict %s server refuses %s: %v", tt.d, tt.msg, err)
		}
	}
}
