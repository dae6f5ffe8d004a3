package bridge

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/media"
)

// sipBotServer is a real bot WebSocket server for -bot-url: every socket
// the bridge opens shows up on conns.
type sipBotServer struct {
	hs    *httptest.Server
	url   string
	conns chan *sipBot
	mu    sync.Mutex
	all   []*sipBot
}

// sipBot is one socket the bridge dialed: its query, its JSON events and
// its binary caller audio frames.
type sipBot struct {
	conn   *websocket.Conn
	query  url.Values
	at     time.Time // when the handshake completed
	events chan map[string]any
	audio  chan []byte
	done   chan struct{}
}

func newSIPBotServer(t *testing.T) *sipBotServer {
	t.Helper()
	s := &sipBotServer{conns: make(chan *sipBot, 64)}
	up := websocket.Upgrader{}
	s.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		b := &sipBot{conn: conn, query: r.URL.Query(), at: time.Now(),
			events: make(chan map[string]any, 1024), audio: make(chan []byte, 4096), done: make(chan struct{})}
		s.mu.Lock()
		s.all = append(s.all, b)
		s.mu.Unlock()
		go func() {
			defer close(b.done)
			for {
				typ, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if typ == websocket.BinaryMessage {
					select {
					case b.audio <- msg:
					default:
					}
					continue
				}
				var ev map[string]any
				if json.Unmarshal(msg, &ev) == nil {
					b.events <- ev
				}
			}
		}()
		s.conns <- b
	}))
	s.url = "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/bot"
	t.Cleanup(func() {
		s.mu.Lock()
		for _, b := range s.all {
			_ = b.conn.Close()
			<-b.done
		}
		s.mu.Unlock()
		s.hs.Close()
	})
	return s
}

func (s *sipBotServer) next(t *testing.T) *sipBot {
	t.Helper()
	select {
	case b := <-s.conns:
		return b
	case <-time.After(waitTimeout):
		t.Fatal("the bridge dialed no bot")
	}
	return nil
}

func (b *sipBot) send(t *testing.T, v any) {
	t.Helper()
	if err := b.conn.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

// expect returns the next event of type typ, skipping others.
func (b *sipBot) expect(t *testing.T, typ string) map[string]any {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev := <-b.events:
			if ev["type"] == typ {
				return ev
			}
		case <-b.done:
			for { // the reader ended; what it queued is still there
				select {
				case ev := <-b.events:
					if ev["type"] == typ {
						return ev
					}
				default:
					t.Fatalf("bot socket closed waiting for %q", typ)
				}
			}
		case <-timeout:
			t.Fatalf("timed out waiting for bot event %q", typ)
		}
	}
}

// uac is a minimal SIP user agent client over UDP written for the tests: it
// sends INVITE/ACK/BYE as text, answers the bridge's BYE, and records the
// RTP the bridge sends.
type uac struct {
	t       *testing.T
	sipConn *net.UDPConn
	rtpConn *net.UDPConn
	srv     *net.UDPAddr
	dialog  *net.UDPAddr // in-dialog requests go here once set: the answering node's Contact (behind a proxy)
	callID  string
	fromTag string
	toTag   string
	cseq    int
	opus    bool        // offer Opus (PT 96) instead of PCMU
	pcma    bool        // offer PCMA (PT 8) instead of PCMU
	direct  bool        // send ACK and BYE straight to the 200 OK's Contact (past a proxy)
	msgs    chan string // SIP messages from the bridge, but BYEs
	byes    chan string // BYE requests from the bridge (answered 200)
	done    chan struct{}

	mu  sync.Mutex
	pkt []rxPacket // guarded by mu
}

type rxPacket struct {
	hdr     rtp.Header
	payload []byte
	at      time.Time
}

func newUAC(t *testing.T, srv string) *uac {
	t.Helper()
	ra, err := net.ResolveUDPAddr("udp", srv)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &uac{t: t, sipConn: sc, rtpConn: rc, srv: ra,
		callID: fmt.Sprintf("uac-%x", rand.Uint64()), fromTag: fmt.Sprintf("%x", rand.Uint32()),
		msgs: make(chan string, 64), byes: make(chan string, 4), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, err := sc.Read(buf)
			if err != nil {
				return
			}
			m := string(buf[:n])
			if strings.HasPrefix(m, "BYE ") {
				u.reply(m, "200 OK")
				select {
				case u.byes <- m:
				default:
				}
				continue
			}
			select {
			case u.msgs <- m:
			default:
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := rc.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			u.mu.Lock()
			u.pkt = append(u.pkt, rxPacket{hdr: p.Header, payload: append([]byte(nil), p.Payload...), at: time.Now()})
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = sc.Close(); _ = rc.Close(); wg.Wait(); close(u.done) })
	return u
}

func (u *uac) local() string { return u.sipConn.LocalAddr().String() }

func (u *uac) write(m string) {
	dst := u.srv
	if u.dialog != nil && !strings.HasPrefix(m, "SIP/2.0") && !strings.HasPrefix(m, "INVITE") {
		dst = u.dialog
	}
	if _, err := u.sipConn.WriteToUDP([]byte(m), dst); err != nil {
		u.t.Error(err)
	}
}

// reply answers a request from the bridge.
func (u *uac) reply(req, status string) {
	var hdrs []string
	for _, l := range strings.Split(req, "\r\n") {
		for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
			if strings.HasPrefix(l, h) {
				hdrs = append(hdrs, l)
			}
		}
	}
	u.write("SIP/2.0 " + status + "\r\n" + strings.Join(hdrs, "\r\n") + "\r\nContent-Length: 0\r\n\r\n")
}

// request sends an in- or out-of-dialog request.
func (u *uac) request(method string, cseq int, body string) {
	u.requestOn(fmt.Sprintf("z9hG4bK%x", rand.Uint64()), method, cseq, body)
}

// requestOn sends a request on the transaction of branch.
func (u *uac) requestOn(branch, method string, cseq int, body string) {
	to := "<sip:bot@" + u.srv.String() + ">"
	if u.toTag != "" {
		to += ";tag=" + u.toTag
	}
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	u.write(fmt.Sprintf("%s sip:bot@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=%s;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:alice@127.0.0.1>;tag=%s\r\n"+
		"To: %s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d %s\r\n"+
		"Contact: <sip:alice@%s>\r\n"+
		"%sContent-Length: %d\r\n\r\n%s",
		method, u.srv, u.local(), branch, u.fromTag, to, u.callID, cseq, method, u.local(), ct, len(body), body))
}

// offer is a G.711 μ-law (or A-law, or Opus) offer with telephone-event at
// our RTP port.
func (u *uac) offer() string {
	port := u.rtpConn.LocalAddr().(*net.UDPAddr).Port
	if u.opus {
		return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=audio " + strconv.Itoa(port) + " RTP/AVP 96 97\r\n" +
			"a=rtpmap:96 opus/48000/2\r\na=rtpmap:97 telephone-event/48000\r\na=sendrecv\r\n"
	}
	if u.pcma {
		return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=audio " + strconv.Itoa(port) + " RTP/AVP 8 101\r\n" +
			"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
	}
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " RTP/AVP 0 101\r\n" +
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
}

var (
	statusRe  = regexp.MustCompile(`^SIP/2.0 (\d{3})`)
	toTagRe   = regexp.MustCompile(`(?m)^To:.*;tag=([^;\r\n]+)`)
	mAudioRe  = regexp.MustCompile(`(?m)^m=audio (\d+) RTP/AVP (\d+)`)
	contactRe = regexp.MustCompile(`(?m)^Contact: *<sip:(?:[^@>]*@)?([0-9.]+:\d+)`)
	cseqIsRe  = regexp.MustCompile(`(?m)^CSeq: (\d+) (\w+)`)
	finalCode = 200
)

// final waits for the final response to the request with cseq.
func (u *uac) final(cseq int) (int, string) {
	u.t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m := <-u.msgs:
			s := statusRe.FindStringSubmatch(m)
			c := cseqIsRe.FindStringSubmatch(m)
			if s == nil || c == nil || c[1] != strconv.Itoa(cseq) {
				continue
			}
			code, _ := strconv.Atoi(s[1])
			if code >= finalCode {
				return code, m
			}
		case <-timeout:
			u.t.Fatalf("no final response to CSeq %d", cseq)
		}
	}
}

// invite sends INVITE and returns the final status; on 200 it ACKs and
// points nothing else: the bridge sends RTP to our offer's port.
func (u *uac) invite() (int, string) {
	u.t.Helper()
	u.cseq = 1
	branch := fmt.Sprintf("z9hG4bK%x", rand.Uint64())
	u.requestOn(branch, "INVITE", 1, u.offer())
	code, m := u.final(1)
	if tt := toTagRe.FindStringSubmatch(m); tt != nil {
		u.toTag = tt[1]
	}
	if code == 200 {
		if u.direct {
			if c := contactRe.FindStringSubmatch(m); c != nil {
				u.dialog, _ = net.ResolveUDPAddr("udp", c[1])
			}
		}
		u.request("ACK", 1, "") // a new transaction (RFC 3261 §13.2.2.4)
	} else {
		u.requestOn(branch, "ACK", 1, "") // the INVITE's (§17.1.1.3)
	}
	return code, m
}

// bye hangs up and waits for the 200.
func (u *uac) bye() {
	u.t.Helper()
	u.cseq++
	u.request("BYE", u.cseq, "")
	if code, _ := u.final(u.cseq); code != 200 {
		u.t.Fatalf("BYE answered %d", code)
	}
}

func (u *uac) waitBye() {
	u.t.Helper()
	select {
	case <-u.byes:
	case <-time.After(waitTimeout):
		u.t.Fatal("the bridge sent no BYE")
	}
}

// sendRTP sends one packet to the bridge's RTP port.
func (u *uac) sendRTP(port int, p *rtp.Packet) {
	b, err := p.Marshal()
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.rtpConn.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		u.t.Fatal(err)
	}
}

func (u *uac) packets() []rxPacket {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rxPacket(nil), u.pkt...)
}

// rms is the RMS of a G.711 μ-law payload, decoded.
func rmsPCMU(payload []byte) float64 {
	pcm := make([]int16, len(payload))
	n := media.DecodeG711(pcm, payload, media.CodecPCMU)
	var e float64
	for _, v := range pcm[:n] {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(max(n, 1)))
}
