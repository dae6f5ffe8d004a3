package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// janusAPI speaks Janus's HTTP (REST) API: sessions, handles, plugin
// messages and the long poll that carries asynchronous events.
type janusAPI struct {
	base   string // http://127.0.0.1:PORT/janus
	client *http.Client
}

// janusMsg is the part of a Janus reply the adapter reads.
type janusMsg struct {
	Janus       string `json:"janus"`
	Transaction string `json:"transaction"`
	Sender      uint64 `json:"sender"`
	Data        struct {
		ID uint64 `json:"id"`
	} `json:"data"`
	Error *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"error"`
	PluginData struct {
		Data json.RawMessage `json:"data"`
	} `json:"plugindata"`
	JSEP *struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	} `json:"jsep"`
}

// videoroomData is the VideoRoom plugin's part of a reply.
type videoroomData struct {
	VideoRoom string `json:"videoroom"`
	Room      uint64 `json:"room"`
	ID        uint64 `json:"id"`
	ErrorCode int    `json:"error_code"`
	Error     string `json:"error"`
}

func newTransaction() string { return rand.Text()[:12] }

// call POSTs a Janus request to path (relative to base) and returns the
// immediate reply; a Janus "error" is an error.
func (j *janusAPI) call(ctx context.Context, path string, req map[string]any) (janusMsg, error) {
	if _, ok := req["transaction"]; !ok {
		req["transaction"] = newTransaction()
	}
	b, err := json.Marshal(req)
	if err != nil {
		return janusMsg{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", j.base+path, bytes.NewReader(b))
	if err != nil {
		return janusMsg{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := j.client.Do(hr)
	if err != nil {
		return janusMsg{}, err
	}
	defer resp.Body.Close()
	var m janusMsg
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return janusMsg{}, fmt.Errorf("janus %s: %v", req["janus"], err)
	}
	if m.Error != nil {
		return m, fmt.Errorf("janus %s: error %d: %s", req["janus"], m.Error.Code, m.Error.Reason)
	}
	return m, nil
}

// plugin sends a VideoRoom request and returns its synchronous answer
// ("success" with plugindata), or the transaction of an asynchronous one
// ("ack": the result comes as an event).
// tx is the request's transaction ("" for a new one).
func (j *janusAPI) plugin(ctx context.Context, session, handle uint64, tx string, body map[string]any, jsep map[string]any) (janusMsg, videoroomData, error) {
	req := map[string]any{"janus": "message", "body": body}
	if tx != "" {
		req["transaction"] = tx
	}
	if jsep != nil {
		req["jsep"] = jsep
	}
	m, err := j.call(ctx, fmt.Sprintf("/%d/%d", session, handle), req)
	if err != nil {
		return m, videoroomData{}, err
	}
	var d videoroomData
	if len(m.PluginData.Data) > 0 {
		if err := json.Unmarshal(m.PluginData.Data, &d); err != nil {
			return m, d, err
		}
		if d.ErrorCode != 0 {
			return m, d, fmt.Errorf("videoroom %s: error %d: %s", body["request"], d.ErrorCode, d.Error)
		}
	}
	return m, d, nil
}

// event long-polls the session until the event of transaction tx arrives.
func (j *janusAPI) event(ctx context.Context, session uint64, tx string) (janusMsg, videoroomData, error) {
	for {
		hr, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/%d?maxev=1", j.base, session), nil)
		if err != nil {
			return janusMsg{}, videoroomData{}, err
		}
		resp, err := j.client.Do(hr)
		if err != nil {
			return janusMsg{}, videoroomData{}, err
		}
		var m janusMsg
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			return m, videoroomData{}, err
		}
		if m.Janus != "event" || m.Transaction != tx {
			continue // keepalive, webrtcup, media, ... or another transaction
		}
		var d videoroomData
		if err := json.Unmarshal(m.PluginData.Data, &d); err != nil {
			return m, d, err
		}
		if d.ErrorCode != 0 {
			return m, d, fmt.Errorf("videoroom event: error %d: %s", d.ErrorCode, d.Error)
		}
		return m, d, nil
	}
}

// janusPublisher is one WHIP resource of the adapter: a Janus session with
// a VideoRoom handle publishing into its own audio-only room.
type janusPublisher struct {
	session, handle, room, id uint64
}

// whipJanus is the test's WHIP front for Janus (Janus 1.1 has no WHIP
// endpoint of its own): POST /whip?forward=PORT creates a session, attaches
// the VideoRoom, creates an audio-only room, joins it as a publisher with
// the offer, asks the room to rtp_forward the published audio to
// 127.0.0.1:PORT, and returns Janus's answer with 201 and a Location;
// DELETE /resource/{session} leaves, destroys the room, detaches and
// destroys the session.
type whipJanus struct {
	t       *testing.T
	api     *janusAPI
	hs      *httptest.Server
	deleted chan uint64 // sessions deleted through DELETE

	mu sync.Mutex
	// The following fields are guarded by mu.
	pubs map[uint64]janusPublisher
	room uint64
}

func newWHIPJanus(t *testing.T, api *janusAPI) *whipJanus {
	t.Helper()
	a := &whipJanus{t: t, api: api, pubs: make(map[uint64]janusPublisher), deleted: make(chan uint64, 64), room: 9000}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", a.post)
	mux.HandleFunc("DELETE /resource/{session}", a.delete)
	a.hs = httptest.NewServer(mux)
	t.Cleanup(a.close)
	return a
}

func (a *whipJanus) post(w http.ResponseWriter, r *http.Request) {
	offer, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.Header.Get("Content-Type") != "application/sdp" {
		http.Error(w, "want application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	forward, _ := strconv.Atoi(r.URL.Query().Get("forward"))
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	p, answer, err := a.publish(ctx, string(offer), forward)
	if err != nil {
		a.t.Logf("WHIP adapter: %v", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	a.mu.Lock()
	a.pubs[p.session] = p
	a.mu.Unlock()
	w.Header().Set("Location", fmt.Sprintf("/resource/%d", p.session))
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// publish runs the Janus side of a WHIP POST. On error whatever was created
// is destroyed.
func (a *whipJanus) publish(ctx context.Context, offer string, forward int) (p janusPublisher, answer string, err error) {
	m, err := a.api.call(ctx, "", map[string]any{"janus": "create"})
	if err != nil {
		return p, "", err
	}
	p.session = m.Data.ID
	defer func() {
		if err != nil {
			a.destroy(p)
		}
	}()
	if m, err = a.api.call(ctx, fmt.Sprintf("/%d", p.session), map[string]any{"janus": "attach", "plugin": "janus.plugin.videoroom"}); err != nil {
		return p, "", err
	}
	p.handle = m.Data.ID
	a.mu.Lock()
	a.room++
	room := a.room
	a.mu.Unlock()
	if _, _, err = a.api.plugin(ctx, p.session, p.handle, "", map[string]any{
		"request": "create", "room": room, "permanent": false, "publishers": 1,
		"audiocodec": "opus", "videocodec": "vp8", "description": "voicebridge WHIP test",
	}, nil); err != nil {
		return p, "", err
	}
	p.room = room
	tx := newTransaction()
	if _, _, err = a.api.plugin(ctx, p.session, p.handle, tx, map[string]any{
		"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": "voicebridge bot",
	}, map[string]any{"type": "offer", "sdp": offer}); err != nil {
		return p, "", err
	}
	ev, d, err := a.api.event(ctx, p.session, tx)
	if err != nil {
		return p, "", err
	}
	if d.VideoRoom != "joined" || ev.JSEP == nil || ev.JSEP.Type != "answer" {
		return p, "", fmt.Errorf("joinandconfigure: got %q without an answer", d.VideoRoom)
	}
	p.id = d.ID
	// The offer carries all its candidates (RFC 9725 without trickle):
	// tell Janus no more are coming, or it waits for them.
	if _, err = a.api.call(ctx, fmt.Sprintf("/%d/%d", p.session, p.handle), map[string]any{
		"janus": "trickle", "candidate": map[string]any{"completed": true},
	}); err != nil {
		return p, "", err
	}
	if forward > 0 {
		if _, _, err = a.api.plugin(ctx, p.session, p.handle, "", map[string]any{
			"request": "rtp_forward", "room": room, "publisher_id": p.id,
			"host": "127.0.0.1", "audio_port": forward,
		}, nil); err != nil {
			return p, "", err
		}
	}
	return p, ev.JSEP.SDP, nil
}

func (a *whipJanus) delete(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseUint(r.PathValue("session"), 10, 64)
	a.mu.Lock()
	p, ok := a.pubs[id]
	delete(a.pubs, id)
	a.mu.Unlock()
	if !ok {
		http.Error(w, "no such resource", http.StatusNotFound)
		return
	}
	a.destroy(p)
	w.WriteHeader(http.StatusOK)
	a.deleted <- id
}

// destroy leaves the room, destroys it, detaches and destroys the session,
// ignoring errors (the parts that exist go).
func (a *whipJanus) destroy(p janusPublisher) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if p.handle != 0 {
		if p.id != 0 {
			_, _, err := a.api.plugin(ctx, p.session, p.handle, "", map[string]any{"request": "leave"}, nil)
			errs = append(errs, err)
		}
		if p.room != 0 {
			_, _, err := a.api.plugin(ctx, p.session, p.handle, "", map[string]any{"request": "destroy", "room": p.room}, nil)
			errs = append(errs, err)
		}
		_, err := a.api.call(ctx, fmt.Sprintf("/%d/%d", p.session, p.handle), map[string]any{"janus": "detach"})
		errs = append(errs, err)
	}
	if p.session != 0 {
		_, err := a.api.call(ctx, fmt.Sprintf("/%d", p.session), map[string]any{"janus": "destroy"})
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		a.t.Logf("WHIP adapter: destroy: %v", err)
	}
}

// close stops the adapter and destroys what was never deleted.
func (a *whipJanus) close() {
	a.hs.Close()
	a.mu.Lock()
	pubs := a.pubs
	a.pubs = nil
	a.mu.Unlock()
	for _, p := range pubs {
		a.destroy(p)
	}
}
