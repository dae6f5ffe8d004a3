package tts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
)

// Wire messages, client to service. Each struct holds exactly the fields its
// dialect's seed defines; required fields have no omitempty.

type faseehVoiceSettings struct {
	Stability *float64 `json:"stability,omitempty"`
}

// faseehInit is faseeh's initConnection: model_id and voice_id required.
type faseehInit struct {
	Type          string               `json:"type"`
	ModelID       string               `json:"model_id"`
	VoiceID       string               `json:"voice_id"`
	VoiceSettings *faseehVoiceSettings `json:"voice_settings,omitempty"`
	XAPIKey       string               `json:"x_api_key,omitempty"`
}

// faseehLegacyInit is faseeh's legacy init form: no "type", no key field.
type faseehLegacyInit struct {
	VoiceID   string   `json:"voice_id"`
	ModelID   string   `json:"model_id"`
	Stability *float64 `json:"stability,omitempty"`
}

// faseehText: try_trigger_generation is required, so it is always sent.
// There is no flush field.
type faseehText struct {
	Type                 string `json:"type"`
	Text                 string `json:"text"`
	TryTriggerGeneration bool   `json:"try_trigger_generation"`
}

// munsitInit is munsit's initConnection: only voice_id is required.
type munsitInit struct {
	Type          string         `json:"type"`
	ModelID       string         `json:"model_id,omitempty"`
	VoiceID       string         `json:"voice_id"`
	VoiceSettings *VoiceSettings `json:"voice_settings,omitempty"`
	OutputFormat  string         `json:"output_format,omitempty"`
	XAPIKey       string         `json:"x_api_key,omitempty"`
}

// munsitText: flush and try_trigger_generation are optional (default
// false); sending them explicitly is within the seed.
type munsitText struct {
	Type                 string `json:"type"`
	Text                 string `json:"text"`
	Flush                bool   `json:"flush"`
	TryTriggerGeneration bool   `json:"try_trigger_generation"`
}

var (
	msgCloseConnection = []byte(`{"type":"closeConnection"}`)
	msgClear           = []byte(`{"type":"clear"}`)
)

// dialect is what differs between the two protocols on the client side. It
// is chosen once per Client.
type dialect interface {
	name() Dialect
	// initMsg is the initConnection message; key is "" unless the key goes
	// in the message.
	initMsg(c *ClientConfig, key string) ([]byte, error)
	// textMsg maps a bot's text/flush/trigger onto the dialect.
	textMsg(text string, flush, trigger bool) ([]byte, error)
	// clearMsg is the clear message, or nil when the dialect has none.
	clearMsg() []byte
	closeMsg() []byte
	// triggers reports whether a text message with these flags asks the
	// service for a generation that will end (isFinal or quiet period).
	triggers(flush, trigger bool) bool
}

func dialectFor(d Dialect) dialect {
	if d == DialectMunsit {
		return munsitDialect{}
	}
	return faseehDialect{}
}

type faseehDialect struct{}

func (faseehDialect) name() Dialect { return DialectFaseeh }

func (faseehDialect) initMsg(c *ClientConfig, key string) ([]byte, error) {
	if c.LegacyInit {
		return json.Marshal(faseehLegacyInit{VoiceID: c.VoiceID, ModelID: c.ModelID, Stability: c.VoiceSettings.Stability})
	}
	m := faseehInit{Type: "initConnection", ModelID: c.ModelID, VoiceID: c.VoiceID, XAPIKey: key}
	if c.VoiceSettings.Stability != nil {
		m.VoiceSettings = &faseehVoiceSettings{Stability: c.VoiceSettings.Stability}
	}
	return json.Marshal(m)
}

// textMsg: faseeh has no flush; a flush becomes try_trigger_generation.
func (faseehDialect) textMsg(text string, flush, trigger bool) ([]byte, error) {
	return json.Marshal(faseehText{Type: "text", Text: text, TryTriggerGeneration: flush || trigger})
}

func (faseehDialect) clearMsg() []byte                  { return nil }
func (faseehDialect) closeMsg() []byte                  { return msgCloseConnection }
func (faseehDialect) triggers(flush, trigger bool) bool { return flush || trigger }
func (munsitDialect) triggers(flush, trigger bool) bool { return flush || trigger }
func (munsitDialect) clearMsg() []byte                  { return msgClear }
func (munsitDialect) closeMsg() []byte                  { return msgCloseConnection }
func (munsitDialect) name() Dialect                     { return DialectMunsit }
func (munsitDialect) textMsg(t string, f, tr bool) ([]byte, error) {
	return json.Marshal(munsitText{Type: "text", Text: t, Flush: f, TryTriggerGeneration: tr})
}

type munsitDialect struct{}

func (munsitDialect) initMsg(c *ClientConfig, key string) ([]byte, error) {
	m := munsitInit{Type: "initConnection", ModelID: c.ModelID, VoiceID: c.VoiceID, OutputFormat: c.OutputFormat, XAPIKey: key}
	if !c.VoiceSettings.empty() {
		vs := c.VoiceSettings
		m.VoiceSettings = &vs
	}
	return json.Marshal(m)
}

// serverWire is the union of every service-to-client message, decoded with
// encoding/json into a reused value. Audio is kept raw so that its base64
// text is decoded straight into the caller's buffer.
type serverWire struct {
	Type         string          `json:"type"`
	Audio        json.RawMessage `json:"audio"`
	SampleRate   float64         `json:"sampleRate"`
	IsFinal      bool            `json:"isFinal"`
	Message      string          `json:"message"`
	ErrorCode    json.RawMessage `json:"errorCode"`
	ErrorMessage string          `json:"errorMessage"`
}

func (w *serverWire) reset() {
	audio, code := w.Audio[:0], w.ErrorCode[:0]
	*w = serverWire{Audio: audio, ErrorCode: code}
}

type frameKind int

const (
	frameAudio frameKind = iota + 1
	frameInitialized
	frameError
)

// frame is one decoded service message. It is reused: buf keeps its
// capacity; pcm aliases buf[1:] so that a carried odd byte fits before it.
type frame struct {
	kind  frameKind
	pcm   []byte // decoded audio, aliases buf[1:]
	rate  int
	final bool
	err   *Error // frameError: the service's error
	perr  *Error // the message did not decode (set by the reader)

	buf  []byte
	wire serverWire
}

// supportedRate reports whether r is a rate the seeds allow.
func supportedRate(r int) bool {
	return r == 8000 || r == 16000 || r == 22050 || r == 24000
}

// decodeServerMessage decodes one service message into f. It accepts both
// error shapes whatever the dialect. It returns a *Error wrapping
// ErrProtocol for bad JSON, bad base64, an unsupported sampleRate or a
// message of no known kind; it never panics. In steady state the audio
// path allocates nothing beyond what encoding/json needs.
func decodeServerMessage(d Dialect, data []byte, f *frame) *Error {
	f.kind, f.pcm, f.rate, f.final, f.err = 0, nil, 0, false, nil
	if audio, rate, final, ok := fastAudio(data); ok {
		return decodeAudio(d, f, audio, float64(rate), final)
	}
	return decodeGeneral(d, data, f)
}

// decodeGeneral is decodeServerMessage with encoding/json, for every
// message outside fastAudio's subset.
func decodeGeneral(d Dialect, data []byte, f *frame) *Error {
	f.kind, f.pcm, f.rate, f.final, f.err = 0, nil, 0, false, nil
	w := &f.wire
	w.reset()
	if err := json.Unmarshal(data, w); err != nil {
		return protocolError(d, "bad JSON from service: %v", err)
	}
	if w.Type == "error" || len(w.ErrorCode) > 0 && !isNull(w.ErrorCode) {
		f.kind = frameError
		if len(w.ErrorCode) > 0 && !isNull(w.ErrorCode) {
			code := string(bytes.Trim(w.ErrorCode, `"`))
			f.err = serviceError(DialectMunsit, code, w.ErrorMessage)
		} else {
			f.err = serviceError(DialectFaseeh, "tts_error", w.Message)
		}
		if f.err.Message == "" {
			f.err.Message = "(no message)"
		}
		return nil
	}
	if w.Type == "connectionInitialized" {
		f.kind = frameInitialized
		return nil
	}
	if w.Type != "" {
		return protocolError(d, "unknown message type %q from service", truncate(w.Type, 64))
	}
	if len(w.Audio) == 0 || isNull(w.Audio) {
		return protocolError(d, "message from service has neither type nor audio")
	}
	raw := w.Audio
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return protocolError(d, "audio is not a string")
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		// JSON escapes ("\/", "\u002b"): rare; unquote the slow way.
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return protocolError(d, "bad audio string: %v", err)
		}
		inner = []byte(s)
	}
	return decodeAudio(d, f, inner, w.SampleRate, w.IsFinal)
}

// decodeAudio decodes base64 text b64 into f's reused buffer and checks
// the rate.
func decodeAudio(d Dialect, f *frame, b64 []byte, sr float64, final bool) *Error {
	f.kind = frameAudio
	f.final = final
	inner := b64
	need := 1 + base64.StdEncoding.DecodedLen(len(inner))
	if cap(f.buf) < need {
		f.buf = make([]byte, need+need/4)
	}
	f.buf = f.buf[:cap(f.buf)]
	n, err := base64.StdEncoding.Decode(f.buf[1:], inner)
	if err != nil {
		return protocolError(d, "bad base64 audio: %v", err)
	}
	f.pcm = f.buf[1 : 1+n]
	if n == 0 && sr == 0 {
		return nil // an empty (final) chunk may omit the rate
	}
	if sr != math.Trunc(sr) || !supportedRate(int(sr)) {
		f.pcm = nil
		e := protocolError(d, "unsupported sampleRate %s (want 8000, 16000, 22050 or 24000)", strconv.FormatFloat(sr, 'g', -1, 64))
		e.cause = ErrUnsupportedRate
		return e
	}
	f.rate = int(sr)
	return nil
}

func isNull(b []byte) bool { return string(b) == "null" }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
