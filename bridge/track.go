package bridge

import (
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
)

// audioTrack is the call's outgoing audio track. Pion's
// TrackLocalStaticRTP puts its one codec's payload type on every packet,
// which would turn RFC 4733 telephone-events into bad audio; audioTrack
// maps the media stream's payload types to the negotiated ones instead:
// media.StreamConfig.DTMFPayloadType to telephone-event at the codec's
// clock rate, everything else to the codec. SSRC and the writer come from
// the binding. One binding (a call has one peer connection).
//
// WriteRTP is called by one goroutine (the pacer) and allocates nothing:
// the header is copied into hdr, which only WriteRTP touches. No lock is
// held while writing.
type audioTrack struct {
	codec webrtc.RTPCodecCapability
	dtmf  uint8 // the stream's DTMF payload type

	mu    sync.Mutex
	bound bool // guarded by mu, as below
	ssrc  uint32
	pt    uint8 // negotiated codec payload type
	tePT  uint8 // negotiated telephone-event payload type
	hasTE bool
	w     webrtc.TrackLocalWriter

	hdr rtp.Header // WriteRTP's own
}

var _ webrtc.TrackLocal = (*audioTrack)(nil)

// telephoneEventMime is RFC 4733's MIME type.
const telephoneEventMime = "audio/telephone-event"

func newAudioTrack(codec webrtc.RTPCodecCapability) *audioTrack {
	return &audioTrack{codec: codec, dtmf: media.DefaultDTMFPayloadType}
}

// Bind picks the negotiated codec matching the track's (MIME type and
// clock rate) and the telephone-event at the same clock rate, if any.
func (t *audioTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var chosen *webrtc.RTPCodecParameters
	var te *webrtc.RTPCodecParameters
	params := ctx.CodecParameters()
	for i := range params {
		c := &params[i]
		switch {
		case chosen == nil && equalFoldMime(c.MimeType, t.codec.MimeType) && c.ClockRate == t.codec.ClockRate:
			chosen = c
		case te == nil && equalFoldMime(c.MimeType, telephoneEventMime) && c.ClockRate == t.codec.ClockRate:
			te = c
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bound, t.ssrc, t.pt, t.w = true, uint32(ctx.SSRC()), uint8(chosen.PayloadType), ctx.WriteStream()
	t.hasTE = te != nil
	if te != nil {
		t.tePT = uint8(te.PayloadType)
	}
	return *chosen, nil
}

// Unbind forgets the binding.
func (t *audioTrack) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.bound {
		return webrtc.ErrUnbindFailed
	}
	t.bound, t.w = false, nil
	return nil
}

func (t *audioTrack) ID() string       { return "audio" }
func (t *audioTrack) RID() string      { return "" }
func (t *audioTrack) StreamID() string { return "voicebridge" }
func (t *audioTrack) Kind() webrtc.RTPCodecType {
	return webrtc.RTPCodecTypeAudio
}

// dtmfState reports whether the track is bound and, if so, whether
// telephone-event was negotiated.
func (t *audioTrack) dtmfState() (bound, negotiated bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bound, t.hasTE
}

// WriteRTP sends p with the binding's SSRC and negotiated payload type.
// A DTMF packet on a binding without telephone-event is dropped (the
// bridge refuses DTMF there first).
func (t *audioTrack) WriteRTP(p *rtp.Packet) error {
	t.mu.Lock()
	bound, ssrc, pt, tePT, hasTE, w := t.bound, t.ssrc, t.pt, t.tePT, t.hasTE, t.w
	t.mu.Unlock()
	if !bound {
		return nil // like Pion's track: nobody to send to yet
	}
	t.hdr = p.Header
	t.hdr.SSRC = ssrc
	if p.PayloadType == t.dtmf {
		if !hasTE {
			return nil
		}
		t.hdr.PayloadType = tePT
	} else {
		t.hdr.PayloadType = pt
	}
	_, err := w.WriteRTP(&t.hdr, p.Payload)
	return err
}

func equalFoldMime(a, b string) bool { return strings.EqualFold(a, b) }
