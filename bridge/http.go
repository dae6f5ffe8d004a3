package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/voicebridge/voicebridge/media"
	"github.com/voicebridge/voicebridge/tts"
)

// Body limits of the contract.
const (
	maxSDPBody  = 64 << 10 // application/sdp offers
	maxJSONCall = 80 << 10 // application/json call requests: a 64 KiB SDP, escaped, plus options
	maxTextBody = 16 << 10 // POST /v1/calls/{id}/text
	maxIDLen    = 128      // voice_id, model_id
)

// routes builds the whole HTTP surface. Every /v1/ route goes through s.v1
// (origin, CORS, token). A path that exists with other methods answers 405,
// an unknown /v1/ path 404, both in the contract's JSON shape.
func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("POST /v1/calls", s.handleCreate)
	api.HandleFunc("GET /v1/calls/{id}", s.handleGet)
	api.HandleFunc("DELETE /v1/calls/{id}", s.handleDelete)
	api.HandleFunc("POST /v1/calls/{id}/text", s.handleText)
	api.HandleFunc("POST /v1/calls/{id}/clear", s.handleClear)
	api.HandleFunc("POST /v1/calls/{id}/dtmf", s.handleDTMF) // dtmf_out.go
	api.HandleFunc("GET /v1/calls/{id}/ws", s.handleWS)
	for _, p := range []string{"/v1/calls", "/v1/calls/{id}", "/v1/calls/{id}/text", "/v1/calls/{id}/clear", "/v1/calls/{id}/dtmf", "/v1/calls/{id}/ws"} {
		api.HandleFunc(p, s.methodNotAllowed)
	}
	api.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) { writeError(w, r, s.log, ErrRouteNotFound) })

	mux := http.NewServeMux()
	mux.Handle("/v1/", s.v1(s.clusterAPI(api)))
	mux.Handle("GET /healthz", s.healthz(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /config.json", s.handleConfig)
	mux.Handle("/", rootHandler())
	return mux
}

// methodNotAllowed answers a known path with a method it does not take.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allow := map[string]string{
		"/v1/calls": "POST", "text": "POST", "clear": "POST", "ws": "GET",
	}
	a, ok := allow[r.URL.Path]
	if !ok {
		i := strings.LastIndexByte(r.URL.Path, '/')
		if a, ok = allow[r.URL.Path[i+1:]]; !ok {
			a = "GET, DELETE"
		}
	}
	w.Header().Set("Allow", a+", OPTIONS")
	writeError(w, r, s.log, fmt.Errorf("%w: %s %s (allowed: %s)", ErrMethodNotAllowed, r.Method, r.URL.Path, a))
}

// publicConfig is GET /config.json: what the demo page needs to prefill its
// controls. It never holds a secret.
type publicConfig struct {
	AuthRequired bool   `json:"auth_required"`
	VoiceID      string `json:"voice_id"`
	ModelID      string `json:"model_id"`
	OutputFormat string `json:"output_format"`
	Dialect      string `json:"dialect"`
	EmbeddedTTS  bool   `json:"embedded_tts"`
}

func (s *Server) handleConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, publicConfig{
		AuthRequired: s.cfg.APIToken != "",
		VoiceID:      s.cfg.Voice,
		ModelID:      s.cfg.Model,
		OutputFormat: s.cfg.TTSFormat,
		Dialect:      string(s.ttsDialect),
		EmbeddedTTS:  s.embedded != nil,
	})
}

// callOptions are the per-call TTS options of POST /v1/calls (query string
// of the SDP form, fields of the JSON form). Empty fields take the Config's
// defaults.
type callOptions struct {
	VoiceID       string            `json:"voice_id"`
	ModelID       string            `json:"model_id"`
	OutputFormat  string            `json:"output_format"`
	VoiceSettings tts.VoiceSettings `json:"voice_settings"`
	// Codec forces the call's codec: "opus", "pcmu" or "pcma" (else the
	// offer's most preferred of them). codec is the one chosen (codecs.go).
	Codec string      `json:"codec"`
	codec media.Codec `json:"-"`
	// formatNamed: the call named its output_format (resolveOptions).
	formatNamed bool `json:"-"`
}

// createRequest is the application/json form of POST /v1/calls: either
// sdp (the client offers, the bridge answers) or whip (the bridge offers to
// that WHIP endpoint).
type createRequest struct {
	SDP  string       `json:"sdp"`
	WHIP *whipRequest `json:"whip"`
	callOptions
}

// role returns the request's signaling role. sdp and whip together are a
// 400: the call cannot both answer and offer.
func (req *createRequest) role() (signaling, error) {
	if req.WHIP == nil {
		if len(req.SDP) > maxSDPBody {
			return nil, &http.MaxBytesError{Limit: maxSDPBody}
		}
		return answerer{offer: req.SDP}, nil
	}
	if req.SDP != "" {
		return nil, fmt.Errorf("%w: give sdp (the bridge answers your offer) or whip (the bridge offers to a WHIP endpoint), not both", ErrInvalidField)
	}
	t, err := req.WHIP.target()
	if err != nil {
		return nil, err
	}
	return whipPublisher{target: t}, nil
}

// createResponse is the application/json answer of POST /v1/calls (no sdp
// for a WHIP publish: the answer went to the endpoint).
type createResponse struct {
	ID  string `json:"id"`
	SDP string `json:"sdp,omitempty"`
}

// handleCreate is POST /v1/calls in both forms: application/sdp (WHEP-shaped,
// options in the query) and application/json (an offer in sdp, or a WHIP
// endpoint to publish to in whip).
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	mt, err := mediaType(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var role signaling
	var opts callOptions
	switch mt {
	case "application/sdp":
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPBody))
		if err != nil {
			writeError(w, r, s.log, bodyError(err))
			return
		}
		role = answerer{offer: string(b)}
		if opts, err = queryOptions(r); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	case "application/json":
		var req createRequest
		if err := decodeJSON(w, r, maxJSONCall, &req); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if role, err = req.role(); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		opts = req.callOptions
	default:
		writeError(w, r, s.log, fmt.Errorf("%w: %q (want application/sdp or application/json)", ErrUnsupportedMediaType, mt))
		return
	}

	c, answer, err := s.createCall(r.Context(), opts, role)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Location", "/v1/calls/"+c.id)
	if mt == "application/sdp" {
		w.Header().Set("Content-Type", "application/sdp")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, answer)
		return
	}
	writeJSON(w, http.StatusCreated, createResponse{ID: c.id, SDP: answer})
}

// queryOptions reads the call options of the application/sdp form.
func queryOptions(r *http.Request) (callOptions, error) {
	q := r.URL.Query()
	o := callOptions{VoiceID: q.Get("voice_id"), ModelID: q.Get("model_id"), OutputFormat: q.Get("output_format"), Codec: q.Get("codec")}
	for _, f := range []struct {
		name string
		dst  **float64
	}{
		{"stability", &o.VoiceSettings.Stability},
		{"similarity_boost", &o.VoiceSettings.SimilarityBoost},
		{"speed", &o.VoiceSettings.Speed},
	} {
		if !q.Has(f.name) {
			continue
		}
		v, err := strconv.ParseFloat(q.Get(f.name), 64)
		if err != nil {
			return o, fmt.Errorf("%w: voice_settings.%s: not a number", ErrInvalidField, f.name)
		}
		*f.dst = &v
	}
	return o, nil
}

// textRequest is the body of POST /v1/calls/{id}/text, and the bot
// WebSocket's text message.
type textRequest struct {
	Type                 string  `json:"type,omitempty"`
	Text                 *string `json:"text"`
	Flush                bool    `json:"flush"`
	TryTriggerGeneration bool    `json:"try_trigger_generation"`
}

func (s *Server) handleText(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if mt, err := mediaType(r); err != nil || mt != "application/json" {
		if err == nil {
			err = fmt.Errorf("%w: %q (want application/json)", ErrUnsupportedMediaType, mt)
		}
		writeError(w, r, s.log, err)
		return
	}
	var req textRequest
	if err := decodeJSON(w, r, maxTextBody, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if req.Text == nil {
		writeError(w, r, s.log, fmt.Errorf("%w: text: required", ErrInvalidField))
		return
	}
	if req.Type != "" && req.Type != "text" {
		writeError(w, r, s.log, fmt.Errorf("%w: type: must be \"text\" or absent", ErrInvalidField))
		return
	}
	if err := c.speak(r.Context(), *req.Text, req.Flush, req.TryTriggerGeneration); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) handleClear(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := c.clear(r.Context()); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// callInfo is GET /v1/calls/{id}.
type callInfo struct {
	ID           string    `json:"id"`
	State        string    `json:"state"` // new, connected, closed
	CreatedAt    time.Time `json:"created_at"`
	EndedAt      time.Time `json:"ended_at,omitzero"`
	CloseReason  string    `json:"close_reason,omitempty"`
	FramesSent   uint64    `json:"frames_sent"`
	SpeechFrames uint64    `json:"speech_frames"`
	LateFrames   uint64    `json:"late_frames"`
	VoiceID      string    `json:"voice_id"`
	ModelID      string    `json:"model_id"`
	OutputFormat string    `json:"output_format"`
	Dialect      string    `json:"dialect"`
	Codec        string    `json:"codec"` // opus, pcmu or pcma
	BotSockets   int       `json:"bot_sockets"`
	WHIP         *whipInfo `json:"whip,omitempty"` // a publish: its resource at the endpoint
	SIP          *sipInfo  `json:"sip,omitempty"`  // a SIP call: its dialog
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	info, err := s.lookupInfo(r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c.Close(ErrHangup)
	w.WriteHeader(http.StatusNoContent)
}

// mediaType returns r's Content-Type without parameters, lower-cased. A
// missing or unparsable header is ErrUnsupportedMediaType.
func mediaType(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", fmt.Errorf("%w: missing Content-Type", ErrUnsupportedMediaType)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("%w: unparsable Content-Type", ErrUnsupportedMediaType)
	}
	return mt, nil
}

// decodeJSON decodes exactly one JSON object of at most limit bytes into v,
// refusing unknown fields (a typo like "try_trigger" must not pass silently).
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return fmt.Errorf("%w: trailing data after the JSON object", ErrBadJSON)
	}
	return nil
}

// bodyError maps a body read or decode failure: over the limit stays a
// *http.MaxBytesError (413), anything else is bad JSON.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: empty body", ErrBadJSON)
	}
	return fmt.Errorf("%w: %v", ErrBadJSON, err)
}
