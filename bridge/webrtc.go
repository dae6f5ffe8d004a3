package bridge

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
)

// opusCodec is Opus at 48 kHz, declared with two channels as RFC 7587 §7
// requires (the content is mono), in-band FEC on: the default codec (PCMU
// and PCMA are in codecs.go).
var opusCodec = webrtc.RTPCodecCapability{
	MimeType:    webrtc.MimeTypeOpus,
	ClockRate:   48000,
	Channels:    2,
	SDPFmtpLine: "minptime=10;useinbandfec=1",
}

// opusPayloadType is the dynamic payload type the bridge registers for Opus;
// the answer follows the offer's number when they differ.
const opusPayloadType = 111

// pionSettings is what every peer connection is built from: the ICE servers
// and the SettingEngine knobs of Config, plus test seams.
type pionSettings struct {
	iceServers     []webrtc.ICEServer
	udpMux         ice.UDPMux // the shared port (udpmux.go); nil with a port range
	portMin        uint16
	portMax        uint16
	publicIPs      []string
	loopback       bool // include loopback host candidates
	loopbackOnly   bool // test seam: gather only on 127.0.0.1 (udp4)
	iceDisconnect  time.Duration
	iceFailed      time.Duration
	iceKeepalive   time.Duration
	hasICETimeouts bool
}

// newPionSettings derives the Pion set-up from cfg (already validated).
func newPionSettings(cfg Config) pionSettings {
	ps := pionSettings{
		portMin:   uint16(cfg.UDPPortMin),
		portMax:   uint16(cfg.UDPPortMax),
		publicIPs: cfg.PublicIPs,
		loopback:  isLoopbackListen(cfg.Listen),
	}
	if len(cfg.STUNServers) > 0 {
		ps.iceServers = append(ps.iceServers, webrtc.ICEServer{URLs: cfg.STUNServers})
	}
	if len(cfg.TURNServers) > 0 {
		ps.iceServers = append(ps.iceServers, webrtc.ICEServer{
			URLs:           cfg.TURNServers,
			Username:       cfg.TURNUsername,
			Credential:     cfg.TURNPassword,
			CredentialType: webrtc.ICECredentialTypePassword,
		})
	}
	return ps
}

// isLoopbackListen reports whether the HTTP listen address is a loopback one
// (the default 127.0.0.1:8080): the clients are then on the same machine and
// need loopback ICE candidates, which Pion leaves out by default.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newAPI builds the Pion API of one call: a MediaEngine with the call's
// codec and telephone-event at its clock rate only (codecs.go), the RTCP
// report interceptors the call's direction dir needs and a SettingEngine
// carrying the shared UDP port (or the port range), NAT 1:1 addresses and
// a slog-backed logger that tags lines with the call.
func (ps pionSettings) newAPI(log *slog.Logger, codec media.Codec, dir webrtc.RTPTransceiverDirection) (*webrtc.API, error) {
	lf := pionLoggerFactory{log: log}
	me := &webrtc.MediaEngine{}
	if err := registerCodec(me, codec); err != nil { // codecs.go
		return nil, err
	}
	// RTCP sender reports, and receiver reports when the call receives
	// (sendrecv: the caller's audio): the SR maps RTP time to wall time
	// (browsers' jitter, RTT and remote-outbound stats). Each report
	// interceptor is a goroutine per call waking once a second. No NACK
	// (Chromium neither offers nor answers nack for Opus, PCMU or PCMA:
	// README "Performance", interceptors; and a retransmitted voice frame
	// would come too late to play), no TWCC (feedback for a send-side
	// bandwidth estimate the bridge does not have) and no stats
	// interceptor (nothing here calls GetStats): each cost goroutines, a
	// packet buffer or a header extension per call.
	ir := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor(report.WithSenderLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	ir.Add(sr)
	if dir == webrtc.RTPTransceiverDirectionSendrecv {
		rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
		if err != nil {
			return nil, fmt.Errorf("register interceptors: %w", err)
		}
		ir.Add(rr)
	}

	se := webrtc.SettingEngine{LoggerFactory: lf}
	if dir == webrtc.RTPTransceiverDirectionSendonly {
		se.BufferFactory = sendOnlyBuffers // rtcpdiscard.go
	}
	if ps.udpMux != nil {
		// Host candidates on the shared socket (srflx and relay ones, if
		// STUN/TURN servers are set, still get sockets of their own).
		se.SetICEUDPMux(ps.udpMux)
	} else if ps.portMin != 0 || ps.portMax != 0 {
		if err := se.SetEphemeralUDPPortRange(ps.portMin, ps.portMax); err != nil {
			return nil, fmt.Errorf("udp port range: %w", err)
		}
	}
	if len(ps.publicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        ps.publicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("public ip: %w", err)
		}
	}
	if ps.loopback || ps.loopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
	}
	// No mDNS: Pion's default (query only) opens multicast sockets and five
	// goroutines per call to resolve a browser's .local host candidates.
	// The bridge does not need them: the browser's own checks reach the
	// bridge's candidates and become peer-reflexive ones (README
	// "Deployment").
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if ps.loopbackOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if ps.hasICETimeouts {
		se.SetICETimeouts(ps.iceDisconnect, ps.iceFailed, ps.iceKeepalive)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// checkOffer parses an SDP offer and checks that it has an audio section that
// can receive what the bridge sends: a non-zero port, a direction of
// sendrecv or recvonly and Opus, PCMU or PCMA (codecs.go). It returns
// ErrInvalidSDP or ErrNoAudio (wrapped).
func checkOffer(offer string) error {
	if strings.TrimSpace(offer) == "" {
		return fmt.Errorf("%w: empty offer", ErrInvalidSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	sawAudio := false
	for _, m := range sd.MediaDescriptions {
		sawAudio = sawAudio || m.MediaName.Media == "audio"
	}
	if !sawAudio {
		return fmt.Errorf("%w: the offer has no audio section", ErrNoAudio)
	}
	if len(offerCodecs(offer)) > 0 {
		return nil
	}
	return fmt.Errorf("%w: no audio section is recvonly or sendrecv with opus/48000, PCMU/8000 or PCMA/8000", ErrNoAudio)
}

// direction returns the media section's direction attribute (sendrecv if
// none, RFC 8866 §6.7).
func direction(m *sdp.MediaDescription) string {
	for _, a := range m.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return "sendrecv"
}
