package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
)

// The codecs a WebRTC call can send: Opus, PCMU and PCMA, each with
// RFC 4733 telephone-event at its clock rate. A call's MediaEngine holds
// only the codec chosen for it (the offer's most preferred of the three,
// or the one the call forced), so the answer names exactly one audio codec
// and the telephone-event that goes with it.

var (
	pcmuCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}
	pcmaCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}
	// telephoneEvent8k is telephone-event at G.711's clock.
	telephoneEvent8k = webrtc.RTPCodecCapability{MimeType: telephoneEventMime, ClockRate: 8000, SDPFmtpLine: "0-15"}
)

// telephoneEvent8kPayloadType is the dynamic payload type registered for
// telephone-event/8000; the answer follows the offer's number.
const telephoneEvent8kPayloadType = 101

// codecCapability is the track capability of codec.
func codecCapability(c media.Codec) webrtc.RTPCodecCapability {
	switch c {
	case media.CodecPCMU:
		return pcmuCodec
	case media.CodecPCMA:
		return pcmaCodec
	}
	return opusCodec
}

// registerCodec adds codec and telephone-event at its clock rate to me.
func registerCodec(me *webrtc.MediaEngine, c media.Codec) error {
	pt := webrtc.PayloadType(c.PayloadType())
	if c == media.CodecOpus {
		pt = opusPayloadType
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: codecCapability(c), PayloadType: pt},
		webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("register %v: %w", c, err)
	}
	var err error
	if c.IsG711() {
		err = me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: telephoneEvent8k, PayloadType: telephoneEvent8kPayloadType},
			webrtc.RTPCodecTypeAudio)
	} else {
		err = registerTelephoneEvent(me) // at 48000 (caller.go)
	}
	if err != nil {
		return fmt.Errorf("register telephone-event: %w", err)
	}
	return nil
}

// offerCodecs returns the codecs the bridge sends that the offer's first
// audio section able to receive lists, in the offer's order of preference
// (its format list). Static payload types 0 and 8 count without rtpmap.
func offerCodecs(offer string) []media.Codec {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 ||
			direction(m) == "sendonly" || direction(m) == "inactive" {
			continue
		}
		names := map[string]string{"0": "pcmu/8000", "8": "pcma/8000"}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				continue
			}
			enc = strings.ToLower(enc)
			if i := strings.Index(enc, "/"); i >= 0 {
				if j := strings.Index(enc[i+1:], "/"); j >= 0 {
					enc = enc[:i+1+j] // drop the channel count
				}
			}
			names[pt] = enc
		}
		var out []media.Codec
		for _, f := range m.MediaName.Formats {
			if _, err := strconv.Atoi(f); err != nil {
				continue
			}
			switch names[f] {
			case "opus/48000":
				out = appendCodec(out, media.CodecOpus)
			case "pcmu/8000":
				out = appendCodec(out, media.CodecPCMU)
			case "pcma/8000":
				out = appendCodec(out, media.CodecPCMA)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

func appendCodec(cs []media.Codec, c media.Codec) []media.Codec {
	for _, x := range cs {
		if x == c {
			return cs
		}
	}
	return append(cs, c)
}

// chooseCodec picks the call's codec: the forced one (o.Codec), which an
// answered offer must list (else ErrCodecNotOffered), or the offer's most
// preferred; Opus when the bridge offers (WHIP) and nothing is forced. A
// G.711 call asks the TTS for pcm_8000 unless the call named a format.
func (s *Server) chooseCodec(o callOptions, role signaling) (callOptions, error) {
	var forced *media.Codec
	if o.Codec != "" {
		c, err := media.ParseCodec(o.Codec)
		if err != nil {
			return o, fmt.Errorf("%w: codec: must be opus, pcmu or pcma", ErrInvalidField)
		}
		forced = &c
	}
	o.codec = media.CodecOpus
	if a, ok := role.(answerer); ok {
		offered := offerCodecs(a.offer)
		switch {
		case forced == nil && len(offered) > 0:
			o.codec = offered[0]
		case forced != nil:
			found := false
			for _, c := range offered {
				found = found || c == *forced
			}
			if !found {
				return o, fmt.Errorf("%w: %v", ErrCodecNotOffered, *forced)
			}
			o.codec = *forced
		}
	} else if forced != nil {
		o.codec = *forced
	}
	if o.codec.IsG711() && !o.formatNamed {
		o.OutputFormat = "pcm_8000"
	}
	return o, nil
}

// ErrCodecNotOffered: the call forced a codec its offer does not list.
var ErrCodecNotOffered = errors.New("bridge: the offer does not list the codec asked for")
