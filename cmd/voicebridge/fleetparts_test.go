package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/bridge/cluster/redistest"
)

// The parts of the fleet test: voicebridge nodes as real processes, Debian's
// HAProxy in front, Pion receivers as callers, and an HTTP client.

// fleetWait bounds every wait of the fleet test; a failure timeout only.
const fleetWait = 30 * time.Second

// lookDebian returns the path of a Debian program the fleet test needs, or
// skips (fails under CI) when it is missing; make deps-test installs them.
func lookDebian(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := name + " is not installed: the fleet test needs Debian's redis-server and haproxy (make deps-test installs them)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// buildVoicebridge builds this command into a temporary directory.
func buildVoicebridge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "voicebridge")
	cmd := exec.Command("go", "build", "-tags", "nolibopusfile", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a child process the test owns; cleanup kills it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it exited
	err  error         // its exit, after done
}

func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
	return p
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// waitExit waits for the process to end and returns its exit error.
func (p *proc) waitExit(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v", p.name, within)
		return nil
	}
}

// node is one voicebridge process of the fleet.
type node struct {
	*proc
	url string // http://127.0.0.1:port
}

// startNode runs a fleet node on a free loopback port and waits for its
// /healthz.
func startNode(t *testing.T, hc *http.Client, bin, name, redisURL, token string, maxCalls int) *node {
	t.Helper()
	port := redistest.FreePort(t)
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	p := startProc(t, name, []string{"VOICEBRIDGE_API_TOKEN=" + token}, bin,
		"-listen", "127.0.0.1:"+strconv.Itoa(port), "-node-url", u, "-cluster-redis", redisURL,
		"-max-calls", strconv.Itoa(maxCalls), "-shutdown-timeout", "4s", "-log-level", "debug")
	n := &node{proc: p, url: u}
	eventually(t, name+" /healthz", func() error {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v", name, p.err)
		default:
		}
		resp, err := hc.Get(u + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	return n
}

// startHAProxy runs Debian's haproxy with the committed fleet config in
// front of three nodes and returns its base URL once all three are up.
func startHAProxy(t *testing.T, hc *http.Client, nodes []*node) string {
	t.Helper()
	bin := lookDebian(t, "haproxy")
	port := redistest.FreePort(t)
	env := []string{"VB_LISTEN=127.0.0.1:" + strconv.Itoa(port)}
	for i, n := range nodes {
		env = append(env, fmt.Sprintf("VB_NODE%d=%s", i+1, strings.TrimPrefix(n.url, "http://")))
	}
	cfg, err := filepath.Abs(filepath.Join("fleet", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	hp := startProc(t, "haproxy", env, bin, "-f", cfg, "-db")
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// Every node in rotation: as many healthz answers in a row as nodes.
	eventually(t, "haproxy up", func() error {
		select {
		case <-hp.done:
			t.Fatalf("haproxy exited: %v", hp.err)
		default:
		}
		for range nodes {
			resp, err := hc.Get(base + "/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		return nil
	})
	return base
}

// client is the test's HTTP client: it never follows redirects (the test
// checks them) and carries the fleet's token.
type client struct {
	hc  *http.Client
	tok string
}

func newClient(t *testing.T, tok string) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{tok: tok, hc: &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request with the token; hdr are extra header pairs.
func (c *client) do(t *testing.T, method, url, contentType string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := c.try(method, url, contentType, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp, b
}

func (c *client) try(method, url, contentType string, body []byte, hdr ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// info is the part of GET /v1/calls/{id} the test reads.
type info struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	CloseReason string `json:"close_reason"`
	FramesSent  uint64 `json:"frames_sent"`
}

// get reads a call's state through base; a non-200 answer is returned as
// an error with its body.
func (c *client) get(base, id string) (info, error) {
	resp, b, err := c.try("GET", base+"/v1/calls/"+id, "", nil)
	if err != nil {
		return info{}, err
	}
	if resp.StatusCode != 200 {
		return info{}, fmt.Errorf("GET: %d %s", resp.StatusCode, b)
	}
	var in info
	err = json.Unmarshal(b, &in)
	return in, err
}

// errorCode returns the contract error code of a JSON error body.
func errorCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// eventually polls f every 50 ms until it returns nil or fails the test.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(fleetWait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quiet silences Pion in the test's peers.
type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, io.Discard)
}

// peer is a caller: a Pion recvonly peer on loopback that counts the RTP
// packets it receives and the sequence numbers it missed.
type peer struct {
	pc        *webrtc.PeerConnection
	connected chan struct{}
	once      sync.Once

	mu sync.Mutex
	// The following fields are guarded by mu.
	stopping bool
	packets  int
	lost     int // sequence numbers skipped
	lastSeq  uint16
	last     time.Time
	maxGap   time.Duration // longest time between two packets

	wg sync.WaitGroup // the track reader; Add under mu (with stopping)
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.LoggerFactory = quiet{}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{pc: pc, connected: make(chan struct{})}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			p.once.Do(func() { close(p.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		defer p.wg.Done()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			now := time.Now()
			p.mu.Lock()
			if p.packets > 0 {
				if d := pkt.SequenceNumber - p.lastSeq; d > 1 && d < 1<<15 {
					p.lost += int(d - 1)
				}
				if g := now.Sub(p.last); g > p.maxGap {
					p.maxGap = g
				}
			}
			p.packets++
			p.lastSeq, p.last = pkt.SequenceNumber, now
			p.mu.Unlock()
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// offer returns the peer's offer with ICE gathering complete.
func (p *peer) offer(t *testing.T) string {
	t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return p.pc.LocalDescription().SDP
}

func (p *peer) accept(t *testing.T, answer string) {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
}

// stats returns the packets received, the sequence numbers missed and the
// longest time between two packets.
func (p *peer) stats() (packets, lost int, maxGap time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.packets, p.lost, p.maxGap
}

// resetGap restarts the longest-gap measure.
func (p *peer) resetGap() {
	p.mu.Lock()
	p.maxGap = 0
	p.mu.Unlock()
}

func (p *peer) close() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	_ = p.pc.Close()
	p.wg.Wait()
}

// liveCall is a connected call with its caller.
type liveCall struct {
	id   string
	node *node
	peer *peer
}

// createAt posts peer's offer to base (a node or the balancer) and returns
// the response; it does not follow a 307.
func (c *client) createAt(t *testing.T, base, offer string) (*http.Response, []byte) {
	t.Helper()
	return c.do(t, "POST", base+"/v1/calls", "application/sdp", []byte(offer))
}

// callID returns the id of an absolute Location, checking it names a node.
func callID(t *testing.T, loc string, nodes []*node) (string, *node) {
	t.Helper()
	for _, n := range nodes {
		if id, ok := strings.CutPrefix(loc, n.url+"/v1/calls/"); ok && id != "" && !strings.Contains(id, "/") {
			return id, n
		}
	}
	t.Fatalf("Location %q is not an absolute call URL of a node", loc)
	return "", nil
}

// connectAt creates a call at base with a new peer and waits until both
// sides are connected.
func (c *client) connectAt(t *testing.T, base string, nodes []*node) *liveCall {
	t.Helper()
	p := newPeer(t)
	resp, body := c.createAt(t, base, p.offer(t))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create at %s: %d %s", base, resp.StatusCode, body)
	}
	id, n := callID(t, resp.Header.Get("Location"), nodes)
	p.accept(t, string(body))
	select {
	case <-p.connected:
	case <-time.After(fleetWait):
		t.Fatal("the caller did not connect")
	}
	eventually(t, "the call connected", func() error {
		in, err := c.get(n.url, id)
		if err == nil && in.State != "connected" {
			err = errors.New(in.State)
		}
		return err
	})
	return &liveCall{id: id, node: n, peer: p}
}

// sdp returns the offer already made.
func (p *peer) sdp() string { return p.pc.LocalDescription().SDP }
