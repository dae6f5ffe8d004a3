package ttsserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/voicebridge/voicebridge/tts"
)

// Strict parsing of client messages by the embedded server: a message or
// field the dialect's seed does not define, a missing required field, or a
// value of the wrong type or range is refused, as a strict service would.

type clientKind int

const (
	clientInit clientKind = iota + 1
	clientText
	clientClear
	clientClose
)

// clientMsg is a parsed client message (the union of both dialects).
type clientMsg struct {
	kind         clientKind
	modelID      string
	voiceID      string
	stability    *float64
	similarity   *float64
	speed        *float64
	outputFormat string
	apiKey       string
	hasAPIKey    bool
	text         string
	flush        bool
	trigger      bool
}

// fieldKind is a JSON type a field must have.
type fieldKind int

const (
	fString fieldKind = iota
	fBool
	fNumber
	fObject
)

type fieldSpec struct {
	kind     fieldKind
	required bool
}

// specs[dialect][type] lists every field the seed defines for that message.
var specs = map[tts.Dialect]map[string]map[string]fieldSpec{
	tts.DialectFaseeh: {
		"initConnection": {"type": {fString, true}, "model_id": {fString, true}, "voice_id": {fString, true},
			"voice_settings": {fObject, false}, "x_api_key": {fString, false}},
		"":                {"voice_id": {fString, true}, "model_id": {fString, true}, "stability": {fNumber, false}}, // legacy init
		"text":            {"type": {fString, true}, "text": {fString, true}, "try_trigger_generation": {fBool, true}},
		"closeConnection": {"type": {fString, true}},
	},
	tts.DialectMunsit: {
		"initConnection": {"type": {fString, true}, "model_id": {fString, false}, "voice_id": {fString, true},
			"voice_settings": {fObject, false}, "output_format": {fString, false}, "x_api_key": {fString, false}},
		"text":            {"type": {fString, true}, "text": {fString, true}, "flush": {fBool, false}, "try_trigger_generation": {fBool, false}},
		"clear":           {"type": {fString, true}},
		"closeConnection": {"type": {fString, true}},
	},
}

// voiceSettingSpecs: faseeh defines only stability.
var voiceSettingSpecs = map[tts.Dialect]map[string][2]float64{
	tts.DialectFaseeh: {"stability": {0, 1}},
	tts.DialectMunsit: {"stability": {0, 1}, "similarity_boost": {0, 1}, "speed": {0.7, 1.2}},
}

// parseClientMessage parses data strictly for dialect d. The error text is
// what the server sends back (it never contains a secret).
func parseClientMessage(d tts.Dialect, data []byte) (clientMsg, error) {
	var m clientMsg
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return m, fmt.Errorf("invalid JSON: message must be a JSON object")
	}
	if dec.More() {
		return m, fmt.Errorf("invalid JSON: trailing data after the object")
	}
	typ := ""
	if raw, ok := obj["type"]; ok {
		if err := json.Unmarshal(raw, &typ); err != nil {
			return m, fmt.Errorf(`field "type" must be a string`)
		}
		if typ == "" {
			return m, fmt.Errorf(`field "type" must not be empty`)
		}
	}
	spec, ok := specs[d][typ]
	if !ok {
		if typ == "" {
			return m, fmt.Errorf(`missing required field "type"`)
		}
		return m, fmt.Errorf("unknown message type %q", truncate(typ, 64))
	}
	for _, k := range sortedKeys(obj) {
		fs, ok := spec[k]
		if !ok {
			return m, fmt.Errorf("unknown field %q in %s message", truncate(k, 64), msgName(typ))
		}
		if err := checkKind(obj[k], fs.kind); err != nil {
			return m, fmt.Errorf("field %q: %v", k, err)
		}
	}
	for _, k := range sortedKeys(spec) {
		if spec[k].required {
			if _, ok := obj[k]; !ok {
				return m, fmt.Errorf("missing required field %q in %s message", k, msgName(typ))
			}
		}
	}
	str := func(k string) string {
		var s string
		if raw, ok := obj[k]; ok {
			_ = json.Unmarshal(raw, &s)
		}
		return s
	}
	flag := func(k string) bool {
		var b bool
		if raw, ok := obj[k]; ok {
			_ = json.Unmarshal(raw, &b)
		}
		return b
	}
	switch typ {
	case "initConnection", "":
		m.kind = clientInit
		m.modelID, m.voiceID = str("model_id"), str("voice_id")
		if strings.TrimSpace(m.voiceID) == "" {
			return m, fmt.Errorf(`field "voice_id" must not be empty`)
		}
		if d == tts.DialectFaseeh && strings.TrimSpace(m.modelID) == "" {
			return m, fmt.Errorf(`field "model_id" must not be empty`)
		}
		if raw, ok := obj["x_api_key"]; ok {
			_ = json.Unmarshal(raw, &m.apiKey)
			m.hasAPIKey = true
		}
		if raw, ok := obj["stability"]; ok { // legacy
			v, err := number(raw, "stability", 0, 1)
			if err != nil {
				return m, err
			}
			m.stability = &v
		}
		if raw, ok := obj["voice_settings"]; ok {
			if err := parseVoiceSettings(d, raw, &m); err != nil {
				return m, err
			}
		}
		if raw, ok := obj["output_format"]; ok {
			_ = json.Unmarshal(raw, &m.outputFormat)
			if _, ok := tts.FormatSampleRate(m.outputFormat); !ok {
				return m, fmt.Errorf(`field "output_format": must be pcm_8000, pcm_16000, pcm_22050 or pcm_24000`)
			}
		}
	case "text":
		m.kind = clientText
		m.text = str("text")
		m.flush = flag("flush")
		m.trigger = flag("try_trigger_generation")
	case "clear":
		m.kind = clientClear
	case "closeConnection":
		m.kind = clientClose
	}
	return m, nil
}

func parseVoiceSettings(d tts.Dialect, raw json.RawMessage, m *clientMsg) error {
	var vs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &vs); err != nil {
		return fmt.Errorf(`field "voice_settings" must be an object`)
	}
	allowed := voiceSettingSpecs[d]
	for _, k := range sortedKeys(vs) {
		r, ok := allowed[k]
		if !ok {
			return fmt.Errorf("unknown field %q in voice_settings", truncate(k, 64))
		}
		v, err := number(vs[k], "voice_settings."+k, r[0], r[1])
		if err != nil {
			return err
		}
		switch k {
		case "stability":
			m.stability = &v
		case "similarity_boost":
			m.similarity = &v
		case "speed":
			m.speed = &v
		}
	}
	return nil
}

func number(raw json.RawMessage, name string, lo, hi float64) (float64, error) {
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("field %q must be a number", name)
	}
	if math.IsNaN(v) || v < lo || v > hi {
		return 0, fmt.Errorf("field %q must be between %g and %g", name, lo, hi)
	}
	return v, nil
}

func checkKind(raw json.RawMessage, k fieldKind) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return fmt.Errorf("empty value")
	}
	ok := false
	switch k {
	case fString:
		ok = raw[0] == '"'
	case fBool:
		ok = string(raw) == "true" || string(raw) == "false"
	case fNumber:
		ok = raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'
	case fObject:
		ok = raw[0] == '{'
	}
	if !ok {
		return fmt.Errorf("must be a %s", [...]string{"string", "boolean", "number", "object"}[k])
	}
	return nil
}

func msgName(typ string) string {
	if typ == "" {
		return "legacy init"
	}
	return typ
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
