package bridge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
)

// videoOnlyOffer is a real offer with no audio section.
func videoOnlyOffer(t *testing.T) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

func TestBadInput(t *testing.T) {
	b := newBridge(t, Config{})
	good := newOfferer(t, 16, nil).offer(t)
	sendonly := strings.ReplaceAll(good, "a=recvonly", "a=sendonly")
	// No codec the bridge sends (Opus, PCMU, PCMA): renamed rtpmaps.
	noOpus := strings.NewReplacer("opus/48000/2", "iLBC/8000", "PCMU/8000", "G729/8000", "PCMA/8000", "GSM/8000").Replace(good)
	big := strings.Repeat("a", maxSDPBody+1)
	tests := []struct {
		name, method, path, ct string
		body                   string
		status                 int
		code                   string
	}{
		{"invalid sdp", "POST", "/v1/calls", "application/sdp", "v=0\r\nthis is not sdp", 400, "invalid_sdp"},
		{"empty sdp", "POST", "/v1/calls", "application/sdp", "", 400, "invalid_sdp"},
		{"no audio", "POST", "/v1/calls", "application/sdp", videoOnlyOffer(t), 400, "offer_without_audio"},
		{"sendonly audio", "POST", "/v1/calls", "application/sdp", sendonly, 400, "offer_without_audio"},
		{"no codec we send", "POST", "/v1/calls", "application/sdp", noOpus, 400, "offer_without_audio"},
		{"bad json", "POST", "/v1/calls", "application/json", `{"sdp": `, 400, "bad_json"},
		{"json not object", "POST", "/v1/calls", "application/json", `"v=0"`, 400, "bad_json"},
		{"json trailing", "POST", "/v1/calls", "application/json", `{"sdp":"x"} {}`, 400, "bad_json"},
		{"json unknown field", "POST", "/v1/calls", "application/json", `{"sdp":"x","voice":"a"}`, 400, "bad_json"},
		{"json invalid sdp", "POST", "/v1/calls", "application/json", `{"sdp":"hello"}`, 400, "invalid_sdp"},
		{"speed high", "POST", "/v1/calls?speed=1.5", "application/sdp", good, 400, "invalid_field"},
		{"speed low", "POST", "/v1/calls?speed=0.5", "application/sdp", good, 400, "invalid_field"},
		{"speed nan", "POST", "/v1/calls?speed=NaN", "application/sdp", good, 400, "invalid_field"},
		{"stability text", "POST", "/v1/calls?stability=high", "application/sdp", good, 400, "invalid_field"},
		{"stability json", "POST", "/v1/calls", "application/json", `{"sdp":"x","voice_settings":{"stability":1.01}}`, 400, "invalid_field"},
		{"similarity json", "POST", "/v1/calls", "application/json", `{"sdp":"x","voice_settings":{"similarity_boost":-0.1}}`, 400, "invalid_field"},
		{"output format", "POST", "/v1/calls?output_format=mp3_44100", "application/sdp", good, 400, "invalid_field"},
		{"sdp too large", "POST", "/v1/calls", "application/sdp", big, 413, "body_too_large"},
		{"json too large", "POST", "/v1/calls", "application/json", `{"sdp":"` + strings.Repeat("a", maxJSONCall) + `"}`, 413, "body_too_large"},
		{"json sdp too large", "POST", "/v1/calls", "application/json", `{"sdp":"` + big + `"}`, 413, "body_too_large"},
		{"text/plain", "POST", "/v1/calls", "text/plain", good, 415, "unsupported_media_type"},
		{"no content type", "POST", "/v1/calls", "", good, 415, "unsupported_media_type"},
		{"form", "POST", "/v1/calls", "application/x-www-form-urlencoded", "sdp=x", 415, "unsupported_media_type"},
		{"get unknown", "GET", "/v1/calls/nope", "", "", 404, "call_not_found"},
		{"delete unknown", "DELETE", "/v1/calls/nope", "", "", 404, "call_not_found"},
		{"text unknown", "POST", "/v1/calls/nope/text", "application/json", `{"text":"hi"}`, 404, "call_not_found"},
		{"clear unknown", "POST", "/v1/calls/nope/clear", "", "", 404, "call_not_found"},
		{"ws unknown", "GET", "/v1/calls/nope/ws", "", "", 404, "call_not_found"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, "not_found"},
		{"list calls", "GET", "/v1/calls", "", "", 405, "method_not_allowed"},
		{"put text", "PUT", "/v1/calls/x/text", "", "", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.do(t, tt.method, tt.path, tt.ct, []byte(tt.body))
			wantError(t, resp, body, tt.status, tt.code)
		})
	}
	if n := len(b.srv.calls); n != 0 {
		t.Errorf("%d calls left after refused requests", n)
	}

	// The server keeps serving: a real call works, and its own endpoints
	// refuse bad input the same way.
	c := b.createCall(t, "")
	for _, tt := range []struct {
		name, path, ct, body string
		status               int
		code                 string
	}{
		{"text bad json", "/text", "application/json", `{"text":`, 400, "bad_json"},
		{"text missing", "/text", "application/json", `{"flush":true}`, 400, "invalid_field"},
		{"text typo", "/text", "application/json", `{"text":"a","try_trigger":true}`, 400, "bad_json"},
		{"text wrong type", "/text", "application/json", `{"type":"clear","text":"a"}`, 400, "invalid_field"},
		{"text content type", "/text", "text/plain", `{"text":"a"}`, 415, "unsupported_media_type"},
		{"text too large", "/text", "application/json", `{"text":"` + strings.Repeat("ب", maxTextBody/2) + `"}`, 413, "body_too_large"},
		{"ws without upgrade", "/ws", "", "", 400, "websocket_required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.path == "/ws" {
				method = "GET"
			}
			resp, body := b.do(t, method, "/v1/calls/"+c.id+tt.path, tt.ct, []byte(tt.body))
			wantError(t, resp, body, tt.status, tt.code)
		})
	}
	// A handshake gorilla refuses (no Sec-WebSocket-Version/Key) is answered
	// in the contract's shape too.
	resp, body := b.do(t, "GET", "/v1/calls/"+c.id+"/ws", "", nil, "Upgrade", "websocket", "Connection", "Upgrade")
	wantError(t, resp, body, 400, "websocket_required")
	resp, body = b.do(t, "GET", "/healthz", "", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	b := newBridge(t, Config{APIToken: token})
	c := b.createCall(t, "")
	for _, tt := range []struct {
		name, auth string
		want       int
	}{
		{"missing", "", 401},
		{"wrong", "Bearer nope", 401},
		{"prefix of token", "Bearer s3cret", 401},
		{"basic scheme", "Basic " + token, 401},
		{"right", "Bearer " + token, 200},
		{"scheme case", "bearer " + token, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.do(t, "GET", "/v1/calls/"+c.id, "", nil, "Authorization", tt.auth)
			if tt.want == 401 {
				wantError(t, resp, body, 401, "unauthorized")
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if strings.Contains(string(body), token) {
					t.Error("the token is echoed")
				}
			} else if resp.StatusCode != tt.want {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	// ?token= is for WebSockets only.
	resp, body := b.do(t, "GET", "/v1/calls/"+c.id+"?token="+token, "", nil, "Authorization", "")
	wantError(t, resp, body, 401, "unauthorized")

	wsURL := "ws" + strings.TrimPrefix(b.url, "http") + "/v1/calls/" + c.id + "/ws"
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("ws without token: err %v", err)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL+"?token=wrong", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("ws with wrong token: err %v", err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(wsURL+"?token="+token, nil)
	if err != nil {
		t.Fatalf("ws with ?token=: %v", err)
	}
	conn.Close()
	conn, _, err = websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("ws with header: %v", err)
	}
	conn.Close()

	// Endpoints outside /v1/ are open; config.json tells the page to ask for
	// a token but never holds one.
	resp, body = b.do(t, "GET", "/config.json", "", nil, "Authorization", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"auth_required":true`) || strings.Contains(string(body), token) {
		t.Fatalf("config.json: %d %s", resp.StatusCode, body)
	}
}

func TestOrigin(t *testing.T) {
	b := newBridge(t, Config{AllowedOrigins: []string{"https://app.example.com"}})
	c := b.createCall(t, "")
	path := "/v1/calls/" + c.id
	host := strings.TrimPrefix(b.url, "http://")
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://app.example.com", true},
		{"https://APP.example.com/", true},
		{"https://evil.example.com", false},
		{"null", false},
	} {
		resp, body := b.do(t, "GET", path, "", nil, "Origin", tt.origin)
		if tt.ok {
			if resp.StatusCode != 200 {
				t.Errorf("origin %q: %d %s", tt.origin, resp.StatusCode, body)
			}
			continue
		}
		wantError(t, resp, body, 403, "origin_not_allowed")
	}
	// A preflight from an allowed foreign origin gets CORS headers.
	resp, _ := b.do(t, "OPTIONS", "/v1/calls", "", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The WebSocket checks the origin too.
	wsURL := "ws://" + host + path + "/ws"
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.example.com"}}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("ws from a foreign origin: %v", err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"http://" + host}})
	if err != nil {
		t.Fatalf("ws same origin: %v", err)
	}
	conn.Close()
}

func TestMaxCalls(t *testing.T) {
	b := newBridge(t, Config{MaxCalls: 1})
	c := b.createCall(t, "")
	off := newOfferer(t, 16, nil)
	offer := off.offer(t)
	resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(offer))
	wantError(t, resp, body, 503, "max_calls")
	// Hanging up frees the slot.
	if resp, body := b.do(t, "DELETE", "/v1/calls/"+c.id, "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do(t, "POST", "/v1/calls", "application/sdp", []byte(offer))
	if resp.StatusCode != 201 {
		t.Fatalf("after hang-up: %d %s", resp.StatusCode, body)
	}
}

func TestConfigJSONAndMetrics(t *testing.T) {
	b := newBridge(t, Config{Voice: "ar-v", Model: "m-x", TTSFormat: "pcm_22050"})
	resp, body := b.do(t, "GET", "/config.json", "", nil)
	want := `{"auth_required":false,"voice_id":"ar-v","model_id":"m-x","output_format":"pcm_22050","dialect":"munsit","embedded_tts":true}`
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != want {
		t.Errorf("config.json: %d %s\nwant %s", resp.StatusCode, body, want)
	}
	c := b.createCall(t, "")
	resp, body = b.do(t, "GET", "/metrics", "", nil)
	for _, m := range []string{
		"voicebridge_calls_active 1", "voicebridge_calls_total 1", "voicebridge_frames_sent_total",
		"voicebridge_late_frames_total", "voicebridge_pacing_error_seconds_bucket", "voicebridge_tts_errors_total",
		"voicebridge_tts_reconnects_total", "voicebridge_tts_ttfb_seconds_bucket", "voicebridge_first_audio_added_latency_seconds_bucket",
	} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	if resp.StatusCode != 200 {
		t.Errorf("metrics: %d", resp.StatusCode)
	}
	b.do(t, "DELETE", "/v1/calls/"+c.id, "", nil)
	_, body = b.do(t, "GET", "/metrics", "", nil)
	if !strings.Contains(string(body), "voicebridge_calls_active 0") {
		t.Error("calls_active not back to 0")
	}
	resp, body = b.do(t, "GET", "/", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Errorf("demo page: %d", resp.StatusCode)
	}
}
