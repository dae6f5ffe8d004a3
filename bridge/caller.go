package bridge

import (
	"encoding/binary"
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

// The receive side of a call: the caller's track (when the offer sends
// audio) is read by one goroutine of the call, readCaller. Opus packets go
// through a reordering jitter buffer and are decoded, with concealment for
// what is lost or late, straight to each rate a bot listens at; 20 ms
// frames are queued on every listening bot socket (audioSink). RFC 4733
// telephone-events on the same SSRC (Pion's TrackRemote hands every
// payload type of the SSRC to the one track) become dtmf events.

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

// rxCodecs are the payload types negotiated on the caller's track.
type rxCodecs struct {
	opus    uint8
	hasOpus bool
	te      [4]uint8 // telephone-event payload types
	teClock [4]int
	nte     int
}

func negotiatedCodecs(tr *webrtc.TrackRemote, params webrtc.RTPParameters) rxCodecs {
	var rc rxCodecs
	for _, cd := range params.Codecs {
		switch {
		case strings.EqualFold(cd.MimeType, webrtc.MimeTypeOpus):
			rc.opus, rc.hasOpus = uint8(cd.PayloadType), true
		case strings.EqualFold(cd.MimeType, telephoneEventCodec.MimeType) && rc.nte < len(rc.te):
			rc.te[rc.nte], rc.teClock[rc.nte] = uint8(cd.PayloadType), int(cd.ClockRate)
			rc.nte++
		}
	}
	if !rc.hasOpus && strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeOpus) {
		rc.opus, rc.hasOpus = uint8(tr.PayloadType()), true
	}
	return rc
}

// rxRate is the decoding state for one listening rate.
type rxRate struct {
	rate    int
	dec     media.Decoder // made when the first bot listens at rate
	fifo    []int16       // decoded samples not yet cut into 20 ms frames
	fill    int
	frame   []byte       // one frame as PCM16LE
	sinks   []*audioSink // local copy: the sockets listening at rate
	decErrs uint64       // packets libopus refused (concealed instead)
}

// rxLoop is the receive goroutine's state; it allocates at start-up and
// when bots come or go, never per packet.
type rxLoop struct {
	c       *Session
	m       *callerMetrics
	codecs  rxCodecs
	jb      *media.JitterBuffer
	dtmf    []*media.DTMFReceiver // one per negotiated telephone-event payload type
	loss    media.LossCounter
	rates   [4]rxRate // 8, 16, 24, 48 kHz
	version uint64
	stats   media.JitterStats // last counters reported to metrics
}

// readCaller is the call's receive goroutine. It blocks in the track's Read
// with a read deadline at the next moment something is due without a
// packet (a concealment, a key press whose end was lost), and returns when
// the track ends (the peer connection closed at teardown).
func (c *Session) readCaller(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	m := c.srv.metrics.caller
	codecs := negotiatedCodecs(tr, rcv.GetParameters())
	jb, err := media.NewJitterBuffer(media.JitterConfig{})
	if err != nil {
		c.log.Error("caller audio: jitter buffer", "err", err)
		return
	}
	l := &rxLoop{c: c, m: m, codecs: codecs, jb: jb}
	for _, clock := range codecs.teClock[:codecs.nte] {
		d, err := media.NewDTMFReceiver(clock, 0, c.onDTMF)
		if err != nil {
			c.log.Error("caller dtmf", "err", err)
			return
		}
		l.dtmf = append(l.dtmf, d)
	}
	for i, r := range []int{8000, 16000, 24000, 48000} {
		l.rates[i] = rxRate{
			rate:  r,
			fifo:  make([]int16, (5760+media.FrameSamples)*r/media.SampleRate),
			frame: make([]byte, r/50*2),
		}
	}
	c.log.Info("caller audio", "opus_pt", codecs.opus, "telephone_events", codecs.nte)
	defer l.logEnd()

	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var set time.Time
	for {
		dl := jb.Deadline()
		for _, d := range l.dtmf {
			if t := d.Deadline(); !t.IsZero() && (dl.IsZero() || t.Before(dl)) {
				dl = t
			}
		}
		if !dl.Equal(set) {
			_ = tr.SetReadDeadline(dl)
			set = dl
		}
		n, _, err := tr.Read(buf)
		now := time.Now()
		if err != nil {
			var te interface{ Timeout() bool }
			switch {
			case errors.As(err, &te) && te.Timeout():
				set = time.Time{} // the deadline fired: set the next one afresh
				l.due(now)
				continue
			case n == 0 || errors.Is(err, io.EOF) || c.ctx.Err() != nil:
				return
			}
			m.otherPackets.Inc() // a payload type the call did not negotiate
			continue
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			m.otherPackets.Inc()
			continue
		}
		l.packet(&pkt, now)
		l.due(now)
	}
}

// packet takes one RTP packet of the caller's SSRC: Opus to the jitter
// buffer, telephone-events to their key-press receiver. Malformed packets
// and unknown payload types are counted as other.
func (l *rxLoop) packet(pkt *rtp.Packet, now time.Time) {
	if lost := l.loss.Add(pkt.SequenceNumber); lost > 0 { // audio and events share the sequence
		l.m.lost.Add(float64(lost))
	}
	pt := pkt.PayloadType
	if l.codecs.hasOpus && pt == l.codecs.opus {
		samples, err := media.OpusPacketSamples(pkt.Payload)
		if err == nil {
			_, err = l.jb.Push(pkt.Timestamp, pkt.Payload, samples, now)
		}
		if err != nil {
			l.m.otherPackets.Inc()
			return
		}
		l.m.audioPackets.Inc()
		return
	}
	for i, te := range l.codecs.te[:l.codecs.nte] {
		if pt == te {
			if l.dtmf[i].Push(pkt.Timestamp, pkt.Payload, now) != nil {
				l.m.otherPackets.Inc()
				return
			}
			l.m.dtmfPackets.Inc()
			return
		}
	}
	l.m.otherPackets.Inc()
}

// logEnd logs the receive side's counters when the call ends.
func (l *rxLoop) logEnd() {
	st := l.jb.Stats()
	var decErrs uint64
	for _, r := range l.rates {
		decErrs += r.decErrs
	}
	l.c.log.Info("caller audio ended", "packets", st.Received, "concealed", st.Concealed, "fec", st.FEC,
		"late", st.Late, "dropped", st.Dropped, "resyncs", st.Resyncs, "decode_errors", decErrs, "delay", l.jb.Delay())
}

// due plays every step of the timeline due at now and ends key presses
// whose end packets were lost.
func (l *rxLoop) due(now time.Time) {
	if v := l.c.rx.version.Load(); v != l.version {
		l.version = v
		l.resync()
	}
	for {
		step := l.jb.Pop(now)
		if step.Kind == media.StepNone {
			break
		}
		l.play(step)
	}
	st := l.jb.Stats()
	if d := st.Late - l.stats.Late; d > 0 {
		l.m.late.Add(float64(d))
	}
	l.stats = st
	for _, d := range l.dtmf {
		d.Poll(now)
	}
}

// resync copies the listening sockets after bots came or went, making a
// decoder for a rate that gets its first listener (a fresh one: a decoder
// that skipped packets would resume from stale state).
func (l *rxLoop) resync() {
	l.c.rx.mu.Lock()
	sinks := l.c.rx.sinks
	l.c.rx.mu.Unlock()
	for i := range l.rates {
		r := &l.rates[i]
		var first bool
		r.sinks, first = sinksAt(r.sinks, sinks, r.rate)
		if first {
			dec, err := media.NewDecoder(r.rate)
			if err != nil {
				l.c.log.Error("caller audio: decoder", "rate", r.rate, "err", err)
				r.sinks = r.sinks[:0]
				continue
			}
			r.dec, r.fill = dec, 0
		}
	}
}

// sinksAt refills dst (reusing its array) with the sinks listening at rate
// and reports whether rate got its first listener: dst had none before.
// The receive paths of WebRTC (rxLoop) and SIP (sipRx) call it from resync.
func sinksAt(dst, sinks []*audioSink, rate int) ([]*audioSink, bool) {
	had := len(dst) > 0
	dst = dst[:0]
	for _, s := range sinks {
		if s.rate == rate {
			dst = append(dst, s)
		}
	}
	return dst, len(dst) > 0 && !had
}

// play decodes (or conceals) one step for every rate bots listen at and
// queues the whole 20 ms frames it completes on their sockets.
func (l *rxLoop) play(step media.JitterStep) {
	var arrival int64
	switch step.Kind {
	case media.StepPacket:
		arrival = step.Arrival.UnixNano()
	case media.StepConceal:
		if step.Payload != nil {
			l.m.fec.Inc()
		} else {
			l.m.plc.Inc()
		}
	}
	for i := range l.rates {
		r := &l.rates[i]
		if len(r.sinks) == 0 {
			continue
		}
		want := step.Samples * r.rate / media.SampleRate
		out := r.fifo[r.fill : r.fill+want]
		var err error
		switch {
		case step.Kind == media.StepPacket:
			var n int
			if n, err = r.dec.Decode(step.Payload, r.fifo[r.fill:]); err == nil && n != want {
				err = media.ErrBadPacket
			}
			if err != nil {
				r.decErrs++
				err = r.dec.DecodePLC(out)
			}
		case step.Payload != nil:
			err = r.dec.DecodeFEC(step.Payload, out)
		default:
			err = r.dec.DecodePLC(out)
		}
		if err != nil {
			clear(out) // keep time even if libopus refuses
		}
		r.fill += want
		frame := r.rate / 50
		for r.fill >= frame {
			for k, v := range r.fifo[:frame] {
				binary.LittleEndian.PutUint16(r.frame[2*k:], uint16(v))
			}
			for _, s := range r.sinks {
				if s.push(r.frame, arrival) {
					l.m.dropped.Inc()
				}
			}
			r.fill = copy(r.fifo, r.fifo[frame:r.fill])
		}
	}
}
