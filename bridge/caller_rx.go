package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/media"
)

// The receive loop of a call, the same for WebRTC and SIP: one goroutine of
// the call takes the caller's RTP packets from its source (the WebRTC
// track, or the queue a SIP call's plain RTP transport fills), puts the
// audio through a reordering jitter buffer at the codec's clock and
// decodes it, with concealment for what is lost or late, straight to each
// rate a bot listens at (Opus by libopus at that rate; G.711 at 8 kHz with
// its own concealment, then upsampled); 20 ms frames are queued on every
// listening bot socket (audioSink), message n holding the audio 20·n ms
// after the caller's first packet. RFC 4733 telephone-events become dtmf
// events.

// rxSource is where a receive loop's packets come from.
type rxSource interface {
	// next waits for the caller's next packet until deadline (zero: no
	// deadline) and parses it into pkt, whose payload stays valid until the
	// next call; it returns when the packet arrived. errRxDue: the deadline
	// passed first; errRxEnd: the source ended (the call is over); any
	// other error: something arrived that is not a packet of the call.
	next(pkt *rtp.Packet, deadline time.Time) (time.Time, error)
}

var (
	errRxDue = errors.New("caller audio: due")
	errRxEnd = errors.New("caller audio: ended")
)

// rxCodecs are the payload types negotiated for the caller's packets.
type rxCodecs struct {
	audio    uint8
	codec    media.Codec
	hasAudio bool
	te       [4]uint8 // telephone-event payload types
	teClock  [4]int
	nte      int
}

// addDTMF adds a telephone-event payload type at clock (up to four).
func (rc *rxCodecs) addDTMF(pt uint8, clock int) {
	if rc.nte < len(rc.te) {
		rc.te[rc.nte], rc.teClock[rc.nte] = pt, clock
		rc.nte++
	}
}

// rxRate is the decoding state for one listening rate.
type rxRate struct {
	rate    int
	dec     media.Decoder // made when the first bot listens at rate
	fifo    []int16       // decoded samples not yet cut into 20 ms frames
	fill    int
	frame   []byte       // one frame as PCM16LE
	sinks   []*audioSink // local copy: the sockets listening at rate
	decErrs uint64       // packets the decoder refused (concealed instead)
}

// listenRatesHz are the rates a bot may listen at, in rxLoop.rates order.
var listenRatesHz = [4]int{8000, 16000, 24000, 48000}

// rxLoop is the receive goroutine's state; it allocates at start-up and
// when bots come or go, never per packet.
type rxLoop struct {
	c       *Session
	m       *callerMetrics
	codecs  rxCodecs
	clock   int // the audio codec's RTP clock
	jb      *media.JitterBuffer
	dtmf    []*media.DTMFReceiver // one per negotiated telephone-event payload type
	loss    media.LossCounter
	rates   [4]rxRate // listenRatesHz
	version uint64
	stats   media.JitterStats // last counters reported to metrics
}

// newRxLoop makes a call's receive loop for the negotiated codecs.
func newRxLoop(c *Session, codecs rxCodecs) (*rxLoop, error) {
	clock := codecs.codec.ClockRate()
	jb, err := media.NewJitterBuffer(media.JitterConfig{ClockRate: clock, NoFEC: codecs.codec != media.CodecOpus})
	if err != nil {
		return nil, fmt.Errorf("jitter buffer: %w", err)
	}
	l := &rxLoop{c: c, m: c.srv.metrics.caller, codecs: codecs, clock: clock, jb: jb}
	for _, clock := range codecs.teClock[:codecs.nte] {
		d, err := media.NewDTMFReceiver(clock, 0, c.onDTMF)
		if err != nil {
			return nil, fmt.Errorf("dtmf: %w", err)
		}
		l.dtmf = append(l.dtmf, d)
	}
	l.makeRates()
	return l, nil
}

// makeRates allocates each rate's buffers: the longest packet (120 ms)
// plus a frame.
func (l *rxLoop) makeRates() {
	for i, r := range listenRatesHz {
		l.rates[i] = rxRate{rate: r, fifo: make([]int16, r*140/1000), frame: make([]byte, r/50*2)}
	}
}

// run is the receive goroutine: it waits for a packet or for the next
// moment something is due without one (a concealment, a key press whose
// end was lost), until the source ends.
func (l *rxLoop) run(src rxSource) {
	l.c.log.Info("caller audio", "codec", l.codecs.codec.String(), "audio_pt", l.codecs.audio, "telephone_events", l.codecs.nte)
	defer l.logEnd(src)
	var pkt rtp.Packet
	for {
		arrival, err := src.next(&pkt, l.deadline())
		switch {
		case err == nil:
			l.packet(&pkt, arrival)
		case errors.Is(err, errRxEnd):
			return
		case !errors.Is(err, errRxDue):
			l.m.otherPackets.Inc() // malformed, or a payload type the call did not negotiate
			continue
		}
		l.due(time.Now())
	}
}

// deadline is the next moment something is due without a packet.
func (l *rxLoop) deadline() time.Time {
	dl := l.jb.Deadline()
	for _, d := range l.dtmf {
		if t := d.Deadline(); !t.IsZero() && (dl.IsZero() || t.Before(dl)) {
			dl = t
		}
	}
	return dl
}

// packet takes one RTP packet of the caller: audio to the jitter buffer,
// telephone-events to their key-press receiver. Malformed packets and
// unknown payload types are counted as other.
func (l *rxLoop) packet(pkt *rtp.Packet, now time.Time) {
	if lost := l.loss.Add(pkt.SequenceNumber); lost > 0 { // audio and events share the sequence
		l.m.lost.Add(float64(lost))
	}
	pt := pkt.PayloadType
	if l.codecs.hasAudio && pt == l.codecs.audio {
		var samples int
		var err error
		if l.codecs.codec.IsG711() {
			samples = len(pkt.Payload) // one byte per sample
		} else {
			samples, err = media.OpusPacketSamples(pkt.Payload)
		}
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

// logEnd logs the receive side's counters when the call ends, with the
// packets its source dropped (an rtpQueue whose loop fell behind).
func (l *rxLoop) logEnd(src rxSource) {
	st := l.jb.Stats()
	var decErrs, queueDrops uint64
	for _, r := range l.rates {
		decErrs += r.decErrs
	}
	if q, ok := src.(interface{ dropped() uint64 }); ok {
		queueDrops = q.dropped()
	}
	l.c.log.Info("caller audio ended", "packets", st.Received, "concealed", st.Concealed, "fec", st.FEC,
		"late", st.Late, "dropped", st.Dropped, "queue_dropped", queueDrops, "resyncs", st.Resyncs,
		"decode_errors", decErrs, "delay", l.jb.Delay())
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
			dec, err := newRxDecoder(l.codecs.codec, r.rate)
			if err != nil {
				l.c.log.Error("caller audio: decoder", "rate", r.rate, "err", err)
				r.sinks = r.sinks[:0]
				continue
			}
			r.dec, r.fill = dec, 0
		}
	}
}

// newRxDecoder is the decoder of codec's packets to rate.
func newRxDecoder(codec media.Codec, rate int) (media.Decoder, error) {
	if codec.IsG711() {
		return media.NewG711Decoder(codec, rate)
	}
	return media.NewDecoder(rate)
}

// sinksAt refills dst (reusing its array) with the sinks listening at rate
// and reports whether rate got its first listener: dst had none before.
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
		want := step.Samples * r.rate / l.clock
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
			clear(out) // keep time even if the decoder refuses
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
