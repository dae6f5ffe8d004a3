package bridge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

const whipToken = "whip-secret-token-4242"

// publish POSTs a WHIP publish request to the bridge and returns the
// response and body.
func (b *testBridge) publish(t *testing.T, whip map[string]any, opts ...string) (*http.Response, []byte) {
	t.Helper()
	req := map[string]any{"whip": whip}
	for i := 0; i+1 < len(opts); i += 2 {
		req[opts[i]] = opts[i+1]
	}
	return b.do(t, "POST", "/v1/calls", "application/json", jsonBody(t, req))
}

// publishOK publishes and returns the call id; anything but a 201 fails
// the test.
func (b *testBridge) publishOK(t *testing.T, whip map[string]any, opts ...string) string {
	t.Helper()
	resp, body := b.publish(t, whip, opts...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	var cr map[string]any
	if err := json.Unmarshal(body, &cr); err != nil {
		t.Fatal(err)
	}
	id, _ := cr["id"].(string)
	if id == "" || resp.Header.Get("Location") != "/v1/calls/"+id {
		t.Fatalf("publish answer %s, Location %q", body, resp.Header.Get("Location"))
	}
	if _, ok := cr["sdp"]; ok {
		t.Errorf("publish answer carries an sdp: %s", body)
	}
	return id
}

// waitDeleted waits for the endpoint to get a DELETE of path.
func waitDeleted(t *testing.T, f *whipSFU, path string) {
	t.Helper()
	select {
	case p := <-f.deleted:
		if p != path {
			t.Fatalf("DELETE %s, want %s", p, path)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no DELETE of %s", path)
	}
}

// TestWHIPPublish publishes a call into a WHIP endpoint backed by a real
// Pion peer: the offer goes out as RFC 9725 says, the peer connects and
// receives the bot's speech, GET shows the resource but not the token, and
// DELETE /v1/calls/{id} deletes the resource.
func TestWHIPPublish(t *testing.T) {
	f := newWHIPSFU(t)
	b := newBridge(t, Config{})
	id := b.publishOK(t, map[string]any{"url": f.hs.URL + "/whip", "token": whipToken}, "voice_id", "ar-test")

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests %+v", reqs)
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/whip" || r.auth != "Bearer "+whipToken || r.contentType != "application/sdp" {
		t.Errorf("WHIP POST %s %s auth %q type %q", r.method, r.path, r.auth, r.contentType)
	}
	offer := r.body
	if !strings.Contains(offer, "a=sendonly") || !strings.Contains(strings.ToLower(offer), "opus/48000/2") {
		t.Errorf("offer is not sendonly Opus:\n%s", offer)
	}
	if !strings.Contains(offer, "a=candidate:") || !strings.Contains(offer, "a=end-of-candidates") {
		t.Errorf("offer without complete candidates:\n%s", offer)
	}

	info := b.waitState(t, id, stateConnected)
	if info.WHIP == nil || info.WHIP.Resource != f.hs.URL+"/resource/1" || info.VoiceID != "ar-test" {
		t.Errorf("GET: %+v (whip %+v)", info, info.WHIP)
	}
	_, raw := b.do(t, "GET", "/v1/calls/"+id, "", nil)
	if strings.Contains(string(raw), whipToken) {
		t.Errorf("GET returns the token: %s", raw)
	}

	bt := b.dialBot(t, id)
	bt.send(t, map[string]any{"type": "text", "text": "مرحبا بكم", "flush": true})
	bt.expect(t, "speaking")
	bt.expect(t, "done")
	// The peer got the speech: decode what it received.
	speech := countSpeech(t, f.packets)
	if speech < 10 {
		t.Errorf("the WHIP peer received %d speech frames", speech)
	}

	resp, body := b.do(t, "DELETE", "/v1/calls/"+id, "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	waitDeleted(t, f, "/resource/1")
	reqs = f.requests()
	if last := reqs[len(reqs)-1]; last.method != "DELETE" || last.auth != "Bearer "+whipToken {
		t.Errorf("DELETE request %+v", last)
	}
}

// countSpeech decodes the packets queued so far and counts frames above
// speechRMS.
func countSpeech(t *testing.T, packets chan *rtp.Packet) int {
	t.Helper()
	dec := newOpusRMS(t)
	n := 0
	for {
		select {
		case p := <-packets:
			if dec.rms(t, p.Payload) > speechRMS {
				n++
			}
		default:
			return n
		}
	}
}

// TestWHIPRedirect: a 307 and a 308 are followed with the method, body and
// token; the resource's relative Location resolves against the final URL.
func TestWHIPRedirect(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		f := newWHIPSFU(t)
		f.mux.HandleFunc("POST /lb", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/whip", status)
		})
		// The balancer is another origin: the token must follow it there.
		lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, f.hs.URL+"/lb", status)
		}))
		b := newBridge(t, Config{})
		id := b.publishOK(t, map[string]any{"url": lb.URL + "/start", "token": whipToken})
		reqs := f.requests()
		if len(reqs) != 2 || reqs[0].path != "/lb" || reqs[1].path != "/whip" {
			t.Fatalf("%d: requests %+v", status, reqs)
		}
		for _, r := range reqs {
			if r.method != "POST" || r.auth != "Bearer "+whipToken || !strings.HasPrefix(r.body, "v=0") {
				t.Errorf("%d: redirected request %s %s auth %q body %.10q", status, r.method, r.path, r.auth, r.body)
			}
		}
		if info := b.getInfo(t, id); info.WHIP == nil || info.WHIP.Resource != f.hs.URL+"/resource/1" {
			t.Errorf("%d: resource %+v", status, info.WHIP)
		}
		b.do(t, "DELETE", "/v1/calls/"+id, "", nil)
		waitDeleted(t, f, "/resource/1")
		lb.Close()
	}
}

// TestWHIPEndpointFailures: refusals, garbage answers, a missing Location,
// an endpoint that never answers and one that cannot be reached are each a
// 502 whip_failed whose message says what happened; a resource created
// before the failure is deleted; the token is never in a message or a log.
func TestWHIPEndpointFailures(t *testing.T) {
	var deletes atomic.Int32
	never := make(chan struct{}) // closed before ep.Close
	handlers := map[string]http.HandlerFunc{
		"/401": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "bad token "+whipToken, http.StatusUnauthorized)
		},
		"/404": func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusNotFound) },
		"/500": func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
		"/garbage": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Location", "/garbage/res")
			w.Header().Set("Content-Type", "application/sdp")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("this is not SDP"))
		},
		"/noaudio": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Location", "/noaudio/res")
			w.Header().Set("Content-Type", "application/sdp")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:96 VP8/90000\r\n"))
		},
		"/nolocation": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/sdp")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("v=0\r\n"))
		},
		"/never": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server see the client leave
			select {
			case <-r.Context().Done():
			case <-never:
			}
		},
	}
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "DELETE" {
			if r.Header.Get("Authorization") != "Bearer "+whipToken {
				t.Errorf("DELETE %s without the token", r.URL.Path)
			}
			deletes.Add(1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h, ok := handlers[r.URL.Path]
		if !ok {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			return
		}
		h(w, r)
	}))
	defer ep.Close()
	defer close(never)
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://user:pa55word@" + l.Addr().String() + "/whip/stream-key-777"
	}()

	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: levelTrace}))
	srv, err := newServer(context.Background(), Config{WHIPTimeout: time.Second}, log, seams{loopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b := &testBridge{srv: srv, hs: hs, url: hs.URL}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		hs.Close()
	}()

	for _, tc := range []struct {
		url, want string
		deleted   bool
	}{
		{ep.URL + "/401", "401 Unauthorized", false},
		{ep.URL + "/404", "404 Not Found", false},
		{ep.URL + "/500", "500 Internal Server Error", false},
		{ep.URL + "/garbage", "not SDP", true},
		{ep.URL + "/noaudio", "does not accept the bridge's Opus audio", true},
		{ep.URL + "/nolocation", "without a Location", false},
		{ep.URL + "/never", "did not answer within 1s", false},
		{closedPort, "cannot connect", false},
	} {
		before := deletes.Load()
		resp, body := b.publish(t, map[string]any{"url": tc.url, "token": whipToken})
		wantError(t, resp, body, http.StatusBadGateway, "whip_failed")
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: message %s, want %q", tc.url, body, tc.want)
		}
		for _, secret := range []string{whipToken, "pa55word", "stream-key-777"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s: the answer carries a secret: %s", tc.url, body)
			}
		}
		if got := deletes.Load() - before; (got == 1) != tc.deleted || got > 1 {
			t.Errorf("%s: %d DELETEs, want deleted=%v", tc.url, got, tc.deleted)
		}
	}
	if n := len(srv.calls) + srv.pending; n != 0 {
		t.Errorf("%d calls left", n)
	}
	if !strings.Contains(logs.String(), "request failed") {
		t.Fatal("nothing logged: the test is not looking at the logs")
	}
	for _, secret := range []string{whipToken, "pa55word", "stream-key-777"} {
		if i := strings.Index(logs.String(), secret); i >= 0 {
			s := logs.String()
			t.Errorf("a secret is logged: ...%s...", s[max(0, i-200):min(len(s), i+50)])
		}
	}
}

// TestWHIPBadRequests: a publish request the bridge refuses before any
// network: 400 with a message that quotes neither the URL nor the token.
func TestWHIPBadRequests(t *testing.T) {
	b := newBridge(t, Config{})
	for _, tc := range []struct {
		name string
		req  map[string]any
	}{
		{"sdp and whip", map[string]any{"sdp": "v=0\r\n", "whip": map[string]any{"url": "http://127.0.0.1:1/whip"}}},
		{"no url", map[string]any{"whip": map[string]any{"token": whipToken}}},
		{"ftp url", map[string]any{"whip": map[string]any{"url": "ftp://user:pa55word@example.com/whip"}}},
		{"relative url", map[string]any{"whip": map[string]any{"url": "/whip/pa55word"}}},
		{"not a url", map[string]any{"whip": map[string]any{"url": "http://[::1:pa55word"}}},
		{"token with a space", map[string]any{"whip": map[string]any{"url": "http://127.0.0.1:1/whip", "token": "pa55 word"}}},
		{"token with a newline", map[string]any{"whip": map[string]any{"url": "http://127.0.0.1:1/whip", "token": "pa55word\r\nX-Evil: 1"}}},
		{"unknown whip field", map[string]any{"whip": map[string]any{"url": "http://127.0.0.1:1/whip", "secret": "pa55word"}}},
		{"bad voice settings", map[string]any{"whip": map[string]any{"url": "http://127.0.0.1:1/whip"}, "voice_settings": map[string]any{"speed": 3}}},
	} {
		resp, body := b.do(t, "POST", "/v1/calls", "application/json", jsonBody(t, tc.req))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.name, resp.StatusCode, body)
			continue
		}
		if strings.Contains(string(body), "pa55word") || strings.Contains(string(body), whipToken) {
			t.Errorf("%s: the answer quotes a secret: %s", tc.name, body)
		}
	}
}

// TestWHIPDeleteOnEveryEnd: whatever ends a published call (DELETE is
// TestWHIPPublish's), the resource is deleted: the bot's closeConnection,
// the SFU closing the peer connection, and the server's shutdown.
func TestWHIPDeleteOnEveryEnd(t *testing.T) {
	f := newWHIPSFU(t)
	b := newBridge(t, Config{})
	whip := map[string]any{"url": f.hs.URL + "/whip"}

	id := b.publishOK(t, whip)
	b.waitState(t, id, stateConnected)
	bt := b.dialBot(t, id)
	bt.send(t, map[string]any{"type": "closeConnection"})
	if ev := bt.expect(t, "closed"); ev["reason"] != "bot_closed" {
		t.Errorf("closed event %v", ev)
	}
	waitDeleted(t, f, "/resource/1")
	if r := f.requests(); r[len(r)-1].auth != "" {
		t.Errorf("DELETE with an Authorization header though no token was given: %q", r[len(r)-1].auth)
	}

	id = b.publishOK(t, whip)
	b.waitState(t, id, stateConnected)
	f.mu.Lock()
	pc := f.peers["2"]
	f.mu.Unlock()
	_ = pc.GracefulClose() // the SFU hangs up (its DELETE handler then finds a closed peer)
	if info := b.waitState(t, id, stateClosed); info.CloseReason != "peer_closed" && info.CloseReason != "peer_failed" && info.CloseReason != "peer_disconnected" {
		t.Errorf("close reason %q", info.CloseReason)
	}
	waitDeleted(t, f, "/resource/2")

	id = b.publishOK(t, whip)
	b.waitState(t, id, stateConnected)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, f, "/resource/3")
}

// TestWHIPDeleteBounded: an endpoint that never answers the DELETE does not
// hold the call's teardown beyond Config.WHIPTimeout.
func TestWHIPDeleteBounded(t *testing.T) {
	f := newWHIPSFU(t)
	stall := make(chan struct{})
	defer close(stall)
	var stalled atomic.Int32
	f.mux.HandleFunc("DELETE /stall/{n}", func(w http.ResponseWriter, r *http.Request) {
		stalled.Add(1)
		select {
		case <-r.Context().Done():
		case <-stall:
		}
	})
	f.mux.HandleFunc("POST /stallwhip", func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		f.post(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Location", strings.Replace(rec.Header().Get("Location"), "/resource/", "/stall/", 1))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	b := newBridge(t, Config{WHIPTimeout: 2 * time.Second})
	id := b.publishOK(t, map[string]any{"url": f.hs.URL + "/stallwhip"})
	b.waitState(t, id, stateConnected)
	// A hang-up waits for the teardown; bound the wait, so a DELETE that
	// holds the teardown fails the test instead of hanging it.
	req, err := http.NewRequest("DELETE", b.url+"/v1/calls/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
	if err != nil {
		t.Fatalf("hang-up held by the stalled WHIP DELETE: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || stalled.Load() != 1 {
		t.Fatalf("delete: %d, %d stalled DELETEs", resp.StatusCode, stalled.Load())
	}
}

// TestWHIPRedirectLimits: a redirect loop ends after maxWHIPRedirects hops,
// and a redirect from https to http is not followed with a token.
func TestWHIPRedirectLimits(t *testing.T) {
	var hops atomic.Int32
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, "/again", http.StatusTemporaryRedirect)
	}))
	defer loop.Close()
	b := newBridge(t, Config{})
	resp, body := b.publish(t, map[string]any{"url": loop.URL + "/whip"})
	wantError(t, resp, body, http.StatusBadGateway, "whip_failed")
	if !strings.Contains(string(body), "redirected more than 5 times") || hops.Load() != maxWHIPRedirects+1 {
		t.Errorf("%d hops: %s", hops.Load(), body)
	}

	from, _ := url.Parse("https://sfu.example/whip")
	red := &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"http://sfu.example/whip"}}}
	if _, err := whipRedirect(from, red, whipToken, 0); err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("https→http with a token: %v", err)
	}
	if next, err := whipRedirect(from, red, "", 0); err != nil || next.String() != "http://sfu.example/whip" {
		t.Errorf("https→http without a token: %v %v", next, err)
	}
	red.Header.Set("Location", "ftp://sfu.example/whip")
	if _, err := whipRedirect(from, red, "", 0); err == nil {
		t.Error("a redirect to ftp:// was followed")
	}
}
