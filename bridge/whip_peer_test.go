package bridge

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hraban/opus"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/peertest"
)

// whipRecord is one request a test WHIP endpoint got.
type whipRecord struct {
	method, path, auth, contentType, body string
}

// whipSFU is a WHIP endpoint in a test backed by real Pion peers: POST
// /whip answers the offer (ICE gathering complete) with 201, a relative
// Location /resource/{n} and the answer; DELETE /resource/{n} closes that
// peer. Every request is recorded, and the RTP the peers receive goes to
// packets. Extra routes (redirects) can be added to mux before use.
type whipSFU struct {
	t       *testing.T
	hs      *httptest.Server
	mux     *http.ServeMux
	packets chan *rtp.Packet
	deleted chan string // paths of DELETEs, in order

	wg sync.WaitGroup // track readers

	mu sync.Mutex
	// The following fields are guarded by mu.
	reqs    []whipRecord
	peers   map[string]*webrtc.PeerConnection
	n       int
	closing bool
}

func newWHIPSFU(t *testing.T) *whipSFU {
	t.Helper()
	f := &whipSFU{
		t:       t,
		mux:     http.NewServeMux(),
		packets: make(chan *rtp.Packet, 1<<14),
		deleted: make(chan string, 64),
		peers:   make(map[string]*webrtc.PeerConnection),
	}
	f.mux.HandleFunc("POST /whip", f.post)
	f.mux.HandleFunc("DELETE /resource/{n}", f.delete)
	f.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, whipRecord{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)})
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.close)
	return f
}

// requests returns the requests so far.
func (f *whipSFU) requests() []whipRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]whipRecord(nil), f.reqs...)
}

func (f *whipSFU) post(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/sdp" {
		http.Error(w, "want application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	offer, _ := io.ReadAll(r.Body)
	pc, err := newLoopbackPeer()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			return
		}
		f.wg.Add(1)
		f.mu.Unlock()
		defer f.wg.Done()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case f.packets <- p:
			default: // the test stopped reading
			}
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	<-gathered
	f.mu.Lock()
	f.n++
	id := fmt.Sprint(f.n)
	f.peers[id] = pc
	f.mu.Unlock()
	w.Header().Set("Location", "/resource/"+id)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

func (f *whipSFU) delete(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	pc, ok := f.peers[r.PathValue("n")]
	delete(f.peers, r.PathValue("n"))
	f.mu.Unlock()
	if !ok {
		http.Error(w, "no such resource", http.StatusNotFound)
		return
	}
	_ = pc.GracefulClose()
	w.WriteHeader(http.StatusOK)
	f.deleted <- r.URL.Path
}

// close stops the server and every peer, and waits for the track readers.
func (f *whipSFU) close() {
	f.hs.Close()
	f.mu.Lock()
	f.closing = true
	peers := f.peers
	f.peers = nil
	f.mu.Unlock()
	for _, pc := range peers {
		_ = pc.GracefulClose()
	}
	f.wg.Wait()
}

// newLoopbackPeer is a Pion peer with the default codecs and interceptors
// that gathers on 127.0.0.1 only.
func newLoopbackPeer() (*webrtc.PeerConnection, error) {
	return peertest.NewPeer(nil, nil)
}

// opusRMS decodes Opus frames and measures their level.
type opusRMS struct {
	dec *opus.Decoder
	pcm []int16
}

func newOpusRMS(t *testing.T) *opusRMS {
	t.Helper()
	dec, err := opus.NewDecoder(48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &opusRMS{dec: dec, pcm: make([]int16, 5760)}
}

// rms decodes one 20 ms Opus packet and returns its RMS (int16 units).
func (o *opusRMS) rms(t *testing.T, payload []byte) float64 {
	t.Helper()
	n, err := o.dec.Decode(payload, o.pcm)
	if err != nil {
		t.Fatalf("opus decode: %v", err)
	}
	if n != 960 {
		t.Errorf("decoded %d samples, want 960 (20 ms)", n)
	}
	var sum float64
	for _, v := range o.pcm[:n] {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(n, 1)))
}
