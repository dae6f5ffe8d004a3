package sip

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Codec is an RTP audio codec of the SDP offer/answer (RFC 3551, RFC 7587).
type Codec struct {
	// Name is the encoding name as the bridge spells it: "pcmu", "pcma" or
	// "opus" (the contract's ?codec= values).
	Name string
	// PayloadType is the RTP payload type: the offer's (dynamic for Opus).
	PayloadType uint8
	// ClockRate is the RTP clock: 8000 for G.711, 48000 for Opus.
	ClockRate uint32
	// Channels is the rtpmap channel count: 1, or 2 for opus/48000/2.
	Channels int
	// FrameSamples is the RTP timestamp step of one 20 ms frame.
	FrameSamples uint32
}

// The codecs the bridge speaks, by name.
var codecs = map[string]Codec{
	"pcmu": {Name: "pcmu", PayloadType: 0, ClockRate: 8000, Channels: 1, FrameSamples: 160},
	"pcma": {Name: "pcma", PayloadType: 8, ClockRate: 8000, Channels: 1, FrameSamples: 160},
	"opus": {Name: "opus", ClockRate: 48000, Channels: 2, FrameSamples: 960},
}

// rtpName is the SDP encoding name of a codec (RFC 3551 §6, RFC 7587 §7).
func (c Codec) rtpName() string {
	switch c.Name {
	case "pcmu":
		return "PCMU"
	case "pcma":
		return "PCMA"
	}
	return "opus"
}

// ParseCodec checks a forced codec name ("pcmu", "pcma", "opus"; any case);
// "" means none.
func ParseCodec(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if _, ok := codecs[s]; ok || s == "" {
		return s, nil
	}
	return "", fmt.Errorf("sip: unknown codec %q: want pcmu, pcma or opus", s)
}

// Direction is an SDP media direction attribute (RFC 3264 §6.1).
type Direction string

// The four directions.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// reverse is the answer's direction for an offer's.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Sends reports whether the side with this direction sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the side with this direction receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Media is the outcome of negotiating one offer: what both sides use.
type Media struct {
	Codec Codec
	// DTMFPayloadType is the offer's telephone-event payload type at the
	// codec's clock (RFC 4733); HasDTMF says whether there was one.
	DTMFPayloadType uint8
	HasDTMF         bool
	// RemoteRTP and RemoteRTCP are where the caller wants RTP and RTCP (the
	// RTCP port is RTP+1 unless the offer had a=rtcp, RFC 3605). The address
	// is unspecified (0.0.0.0) for an RFC 2543-style hold.
	RemoteRTP, RemoteRTCP netip.AddrPort
	// Offered is the offer's direction (sendrecv if it named none).
	Offered Direction

	// lines are the offer's m= lines and audio the index of the one
	// negotiated: the answer has as many, the others rejected with port 0
	// (RFC 3264 §6).
	lines []sdp.MediaName
	audio int
}

// Hold reports whether the offer puts the bridge on hold: it will not
// receive (sendonly or inactive) or its address is 0.0.0.0.
func (m Media) Hold() bool {
	return !m.Offered.Receives() || !m.RemoteRTP.Addr().IsValid() || m.RemoteRTP.Addr().IsUnspecified()
}

// rtpmap is one a=rtpmap line.
type rtpmap struct {
	name     string // lower case
	clock    uint32
	channels int
}

// Negotiate picks the codec for an SDP offer: the first of the offer's
// formats (its order of preference) that the bridge speaks, or force when
// non-empty. Errors: ErrBadSDP, ErrNoAudio, ErrNoCommonCodec,
// ErrCodecNotOffered.
func Negotiate(offer []byte, force string) (Media, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(offer)); err != nil {
		return Media{}, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	var md *sdp.MediaDescription
	var out Media
	for i, m := range sd.MediaDescriptions {
		out.lines = append(out.lines, m.MediaName)
		if md == nil && m.MediaName.Media == "audio" && m.MediaName.Port.Value != 0 &&
			strings.Join(m.MediaName.Protos, "/") == "RTP/AVP" {
			md, out.audio = m, i
		}
	}
	if md == nil {
		return Media{}, ErrNoAudio
	}
	ip, err := connectionAddr(&sd, md)
	if err != nil {
		return Media{}, err
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return Media{}, fmt.Errorf("%w: media port %d", ErrBadSDP, port)
	}
	out.RemoteRTP = netip.AddrPortFrom(ip, uint16(port))
	out.RemoteRTCP = netip.AddrPortFrom(ip, uint16(port+1))
	out.Offered = direction(sd.Attributes, md.Attributes)
	maps := map[uint8]rtpmap{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			if pt, m, ok := parseRtpmap(a.Value); ok {
				maps[pt] = m
			}
		case "rtcp": // RFC 3605: a=rtcp:port [IN IP4 addr]
			f := strings.Fields(a.Value)
			if len(f) == 0 {
				continue
			}
			if p, err := strconv.Atoi(f[0]); err == nil && p > 0 && p < 65536 {
				addr := ip
				if len(f) == 4 {
					if a, err := netip.ParseAddr(f[3]); err == nil {
						addr = a
					}
				}
				out.RemoteRTCP = netip.AddrPortFrom(addr, uint16(p))
			}
		}
	}
	found := false
	for _, f := range md.MediaName.Formats {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			continue
		}
		pt := uint8(n)
		c, ok := codecOf(pt, maps)
		if !ok || (force != "" && c.Name != force) {
			continue
		}
		out.Codec, found = c, true
		break
	}
	if !found {
		if force != "" {
			return Media{}, fmt.Errorf("%w: %s", ErrCodecNotOffered, force)
		}
		return Media{}, ErrNoCommonCodec
	}
	for _, f := range md.MediaName.Formats {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			continue
		}
		if m, ok := maps[uint8(n)]; ok && m.name == "telephone-event" && m.clock == out.Codec.ClockRate {
			out.DTMFPayloadType, out.HasDTMF = uint8(n), true
			break
		}
	}
	return out, nil
}

// codecOf maps a payload type of the offer to a codec the bridge speaks.
// Static types 0 and 8 need no rtpmap (RFC 3551 §6); a present rtpmap wins.
func codecOf(pt uint8, maps map[uint8]rtpmap) (Codec, bool) {
	m, ok := maps[pt]
	if !ok {
		switch pt {
		case 0:
			return codecs["pcmu"], true
		case 8:
			return codecs["pcma"], true
		}
		return Codec{}, false
	}
	var c Codec
	switch {
	case m.name == "pcmu" && m.clock == 8000 && m.channels <= 1:
		c = codecs["pcmu"]
	case m.name == "pcma" && m.clock == 8000 && m.channels <= 1:
		c = codecs["pcma"]
	case m.name == "opus" && m.clock == 48000 && m.channels == 2:
		c = codecs["opus"]
	default:
		return Codec{}, false
	}
	c.PayloadType = pt
	return c, true
}

// parseRtpmap parses "96 opus/48000/2".
func parseRtpmap(v string) (uint8, rtpmap, bool) {
	ptS, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	pt, err := strconv.Atoi(ptS)
	if !ok || err != nil || pt < 0 || pt > 127 {
		return 0, rtpmap{}, false
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 {
		return 0, rtpmap{}, false
	}
	clock, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return 0, rtpmap{}, false
	}
	m := rtpmap{name: strings.ToLower(parts[0]), clock: uint32(clock)}
	if len(parts) > 2 {
		if m.channels, err = strconv.Atoi(parts[2]); err != nil {
			return 0, rtpmap{}, false
		}
	}
	return uint8(pt), m, true
}

// connectionAddr is the media's c= address, else the session's.
func connectionAddr(sd *sdp.SessionDescription, md *sdp.MediaDescription) (netip.Addr, error) {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, fmt.Errorf("%w: no c= line", ErrBadSDP)
	}
	if ci.NetworkType != "IN" || (ci.AddressType != "IP4" && ci.AddressType != "IP6") {
		return netip.Addr{}, fmt.Errorf("%w: c= %s %s", ErrBadSDP, ci.NetworkType, ci.AddressType)
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP", ErrBadSDP, ci.Address.Address)
	}
	return ip.Unmap(), nil
}

// direction is the media's direction attribute, else the session's, else
// sendrecv (RFC 3264 §5.1).
func direction(session, media []sdp.Attribute) Direction {
	for _, attrs := range [][]sdp.Attribute{media, session} {
		for _, a := range attrs {
			switch d := Direction(a.Key); d {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				return d
			}
		}
	}
	return SendRecv
}

// Answer builds the SDP answer to an offer negotiated as m: the bridge at
// ip:port, the chosen codec, telephone-event if offered, 20 ms packets and
// the reverse of the offer's direction. version is the o= session version;
// it must grow with each answer of a dialog (RFC 3264 §8).
func Answer(m Media, ip netip.Addr, port int, sessionID, version uint64) ([]byte, error) {
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	formats := []string{strconv.Itoa(int(m.Codec.PayloadType))}
	rtpmapV := fmt.Sprintf("%d %s/%d", m.Codec.PayloadType, m.Codec.rtpName(), m.Codec.ClockRate)
	if m.Codec.Channels > 1 {
		rtpmapV += "/" + strconv.Itoa(m.Codec.Channels)
	}
	attrs := []sdp.Attribute{sdp.NewAttribute("rtpmap", rtpmapV)}
	if m.Codec.Name == "opus" {
		attrs = append(attrs, sdp.NewAttribute("fmtp", fmt.Sprintf("%d minptime=10;useinbandfec=1", m.Codec.PayloadType)))
	}
	if m.HasDTMF {
		formats = append(formats, strconv.Itoa(int(m.DTMFPayloadType)))
		attrs = append(attrs,
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/%d", m.DTMFPayloadType, m.Codec.ClockRate)),
			sdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-16", m.DTMFPayloadType)))
	}
	attrs = append(attrs, sdp.NewAttribute("ptime", "20"), sdp.NewPropertyAttribute(string(m.Offered.reverse())))
	conn := &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: ip.String()}}
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "-", SessionID: sessionID, SessionVersion: version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip.String(),
		},
		SessionName:           "voicebridge",
		ConnectionInformation: conn,
		TimeDescriptions:      []sdp.TimeDescription{{}},
	}
	audio := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:   "audio",
			Port:    sdp.RangedPort{Value: port},
			Protos:  []string{"RTP", "AVP"},
			Formats: formats,
		},
		Attributes: attrs,
	}
	if len(m.lines) == 0 {
		sd.MediaDescriptions = []*sdp.MediaDescription{audio}
	}
	for i, l := range m.lines {
		if i == m.audio {
			sd.MediaDescriptions = append(sd.MediaDescriptions, audio)
			continue
		}
		// A stream we do not take: same media, proto and one format, port 0.
		rejected := sdp.MediaName{Media: l.Media, Port: sdp.RangedPort{Value: 0}, Protos: l.Protos, Formats: l.Formats}
		if len(rejected.Formats) > 1 {
			rejected.Formats = rejected.Formats[:1]
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{MediaName: rejected})
	}
	return sd.Marshal()
}
