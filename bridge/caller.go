package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/voicebridge/voicebridge/media"
)

// The receive side of a WebRTC call: the caller's track (when the offer
// sends audio) is the packet source of the call's receive loop (caller_rx.go),
// the one a SIP call's plain RTP feeds too. RFC 4733 telephone-events come
// on the same SSRC: Pion's TrackRemote hands every payload type of the SSRC
// to the one track.

// telephoneEventCodec is RFC 4733 telephone-event at Opus's 48 kHz clock,
// the rate Chrome offers it at alongside Opus (it offers 8000 too, for
// G.711). Events 0-15 are the keypad.
var telephoneEventCodec = webrtc.RTPCodecCapability{
	MimeType:    "audio/telephone-event",
	ClockRate:   48000,
	SDPFmtpLine: "0-15",
}

// telephoneEventPayloadType is the dynamic payload type the bridge registers
// for telephone-event/48000; the answer follows the offer's number.
const telephoneEventPayloadType = 110

// registerTelephoneEvent adds telephone-event to a MediaEngine.
func registerTelephoneEvent(me *webrtc.MediaEngine) error {
	return me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: telephoneEventCodec,
		PayloadType:        telephoneEventPayloadType,
	}, webrtc.RTPCodecTypeAudio)
}

// offerSendsAudio reports whether the offer's first usable audio section
// sends audio (sendrecv): the answer is then sendrecv and the caller's
// track is read. A recvonly offer gets a sendonly answer, as before.
func offerSendsAudio(offer string) bool {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return false
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		switch direction(m) {
		case "sendrecv":
			return true
		case "recvonly":
			return false
		}
	}
	return false
}

// callerRx is the receive side's shared state. Its zero value is ready.
type callerRx struct {
	mu sync.Mutex
	// sinks is guarded by mu; it is replaced, never changed in place, and
	// version counts the replacements so the receive goroutine copies it
	// only when it changed.
	sinks   []*audioSink
	version atomic.Uint64
	// reading is guarded by the Session's mu: a track reader was started.
	reading bool
}

// addSink makes a listening bot socket receive caller audio.
func (c *Session) addSink(s *audioSink) {
	c.rx.mu.Lock()
	c.rx.sinks = append(append([]*audioSink(nil), c.rx.sinks...), s)
	c.rx.mu.Unlock()
	c.rx.version.Add(1)
}

// removeSink stops a socket's caller audio.
func (c *Session) removeSink(s *audioSink) {
	c.rx.mu.Lock()
	sinks := make([]*audioSink, 0, len(c.rx.sinks))
	for _, x := range c.rx.sinks {
		if x != s {
			sinks = append(sinks, x)
		}
	}
	c.rx.sinks = sinks
	c.rx.mu.Unlock()
	c.rx.version.Add(1)
}

// onTrack is Pion's OnTrack callback (Pion's goroutine): it only starts the
// call's receive goroutine, once, unless the call is ending.
func (c *Session) onTrack(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	if tr.Kind() != webrtc.RTPCodecTypeAudio {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.rx.reading {
		return
	}
	c.rx.reading = true
	c.wg.Go(func() { c.readCaller(tr, rcv) })
	// The receiver's RTCP (the caller's sender reports) is read so the
	// report interceptor sees it; ends when the peer connection closes.
	c.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := rcv.Read(buf); err != nil {
				return
			}
		}
	})
}

// dtmfEvent is the bot event of a key press.
type dtmfEvent struct {
	Type       string `json:"type"`
	Digit      string `json:"digit"`
	DurationMS int64  `json:"duration_ms"`
}

// onDTMF sends a received key press to every bot. It runs on the receive
// goroutine (once per key press, not per frame).
func (c *Session) onDTMF(e media.DTMFEvent) {
	c.srv.metrics.caller.dtmfIn.Inc()
	msg, _ := json.Marshal(dtmfEvent{Type: "dtmf", Digit: string(e.Digit), DurationMS: e.Duration.Milliseconds()})
	c.broadcast(msg)
}

// negotiatedCodecs are the caller's audio codec (the track's, else the
// first Opus, PCMU or PCMA negotiated) and telephone-event payload types.
func negotiatedCodecs(tr *webrtc.TrackRemote, params webrtc.RTPParameters) rxCodecs {
	var rc rxCodecs
	take := func(mime string, pt uint8) bool {
		for _, k := range []struct {
			mime  string
			codec media.Codec
		}{{webrtc.MimeTypeOpus, media.CodecOpus}, {webrtc.MimeTypePCMU, media.CodecPCMU}, {webrtc.MimeTypePCMA, media.CodecPCMA}} {
			if strings.EqualFold(mime, k.mime) {
				rc.audio, rc.codec, rc.hasAudio = pt, k.codec, true
				return true
			}
		}
		return false
	}
	take(tr.Codec().MimeType, uint8(tr.PayloadType()))
	for _, cd := range params.Codecs {
		switch {
		case strings.EqualFold(cd.MimeType, telephoneEventCodec.MimeType):
			rc.addDTMF(uint8(cd.PayloadType), int(cd.ClockRate))
		case !rc.hasAudio:
			take(cd.MimeType, uint8(cd.PayloadType))
		}
	}
	return rc
}

// readCaller is the receive goroutine of a WebRTC call: the receive loop
// on the caller's track, until the track ends (the peer connection closed
// at teardown).
func (c *Session) readCaller(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	l, err := newRxLoop(c, negotiatedCodecs(tr, rcv.GetParameters()))
	if err != nil {
		c.log.Error("caller audio", "err", err)
		return
	}
	l.run(&trackSource{tr: tr, ctx: c.ctx, buf: make([]byte, 1500)})
}

// trackSource reads the caller's packets from Pion's TrackRemote, with a
// read deadline at the loop's next due moment (set only when it changed).
type trackSource struct {
	tr  *webrtc.TrackRemote
	ctx context.Context
	buf []byte
	set time.Time // the read deadline in force
}

func (s *trackSource) next(pkt *rtp.Packet, deadline time.Time) (time.Time, error) {
	if !deadline.Equal(s.set) {
		_ = s.tr.SetReadDeadline(deadline)
		s.set = deadline
	}
	n, _, err := s.tr.Read(s.buf)
	now := time.Now()
	if err != nil {
		var te interface{ Timeout() bool }
		switch {
		case errors.As(err, &te) && te.Timeout():
			s.set = time.Time{} // the deadline fired: set the next one afresh
			return now, errRxDue
		case n == 0 || errors.Is(err, io.EOF) || s.ctx.Err() != nil:
			return now, errRxEnd
		}
		return now, err // a payload type the call did not negotiate
	}
	if err := pkt.Unmarshal(s.buf[:n]); err != nil {
		return now, err
	}
	return now, nil
}
