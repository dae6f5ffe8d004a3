package bridge

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/bridge/sip"
	"github.com/voicebridge/voicebridge/media"
)

// sipRxFIFO bounds the decoded caller audio not yet cut into 20 ms frames,
// per rate (PCM16LE bytes): several 20 ms frames at 48 kHz.
const sipRxFIFO = 16 << 10

// sipRx is a SIP call's receive path: the caller's RTP (G.711 or Opus)
// decoded in arrival order into 20 ms PCM16 frames for every listening bot
// rate, and RFC 4733 key presses into "dtmf" events. It runs on the RTP
// transport's read goroutine (sipHandler.HandleRTP); mu only makes close
// (at the call's end) safe against a last packet. It allocates when bots
// come or go, never per packet.
type sipRx struct {
	c       *Session
	m       *callerMetrics
	codec   media.Codec
	audioPT uint8
	dtmfPT  uint8
	dtmf    *media.DTMFReceiver // nil without telephone-event

	mu      sync.Mutex
	closed  bool // guarded by mu
	loss    media.LossCounter
	version uint64
	g711    media.Decoder // 8 kHz, for G.711 calls
	pcm     []int16       // one decoded packet
	raw     []byte        // pcm as PCM16LE
	rates   [4]sipRate    // 8, 16, 24, 48 kHz
	out     []byte        // one packet at a rate, PCM16LE
}

// sipRate is the caller audio at one listening rate.
type sipRate struct {
	rate    int
	sinks   []*audioSink
	dec     media.Decoder // Opus decoded at rate
	up      *interpolator // G.711's 8 kHz to rate (nil at 8 kHz)
	fifo    []byte        // PCM16LE not yet cut into 20 ms frames
	fill    int
	arrival int64
	dropped func()
}

func newSIPRx(c *Session, codec media.Codec, m sip.Media) (*sipRx, error) {
	x := &sipRx{
		c:       c,
		m:       c.srv.metrics.caller,
		codec:   codec,
		audioPT: m.Codec.PayloadType,
		dtmfPT:  m.DTMFPayloadType,
		pcm:     make([]int16, 5760),
		raw:     make([]byte, 2*5760),
		out:     make([]byte, sipRxFIFO),
	}
	if m.HasDTMF {
		d, err := media.NewDTMFReceiver(int(m.Codec.ClockRate), 0, c.onDTMF)
		if err != nil {
			return nil, err
		}
		x.dtmf = d
	}
	if codec.IsG711() {
		dec, err := media.NewG711Decoder(codec)
		if err != nil {
			return nil, err
		}
		x.g711 = dec
	}
	for i, r := range []int{8000, 16000, 24000, 48000} {
		x.rates[i] = sipRate{rate: r, fifo: make([]byte, sipRxFIFO), dropped: x.m.dropped.Inc}
	}
	return x, nil
}

// packet takes one RTP packet from the caller.
func (x *sipRx) packet(p *rtp.Packet, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return
	}
	if lost := x.loss.Add(p.SequenceNumber); lost > 0 {
		x.m.lost.Add(float64(lost))
	}
	if v := x.c.rx.version.Load(); v != x.version {
		x.version = v
		x.resync()
	}
	switch {
	case x.dtmf != nil && p.PayloadType == x.dtmfPT:
		if x.dtmf.Push(p.Timestamp, p.Payload, now) != nil {
			x.m.otherPackets.Inc()
		} else {
			x.m.dtmfPackets.Inc()
		}
	case p.PayloadType == x.audioPT:
		x.m.audioPackets.Inc()
		x.audio(p.Payload, now.UnixNano())
	default:
		x.m.otherPackets.Inc()
	}
	if x.dtmf != nil {
		x.dtmf.Poll(now) // a key press whose end packets were lost
	}
}

// audio decodes one packet for every rate a bot listens at.
func (x *sipRx) audio(payload []byte, arrival int64) {
	if x.g711 != nil {
		n, err := x.g711.Decode(payload, x.pcm)
		if err != nil || n == 0 {
			x.m.otherPackets.Inc()
			return
		}
		for k, v := range x.pcm[:n] {
			binary.LittleEndian.PutUint16(x.raw[2*k:], uint16(v))
		}
		for i := range x.rates {
			x.rates[i].arrival = arrival
		}
		for i := range x.rates {
			r := &x.rates[i]
			switch {
			case len(r.sinks) == 0:
			case r.up == nil:
				_, _ = r.Write(x.raw[:2*n])
			default:
				_, _ = r.Write(x.out[:r.up.run(x.pcm[:n], x.out)])
			}
		}
		return
	}
	for i := range x.rates {
		r := &x.rates[i]
		if len(r.sinks) == 0 || r.dec == nil {
			continue
		}
		n, err := r.dec.Decode(payload, x.pcm)
		if err != nil {
			continue
		}
		for k, v := range x.pcm[:n] {
			binary.LittleEndian.PutUint16(x.raw[2*k:], uint16(v))
		}
		r.arrival = arrival
		_, _ = r.Write(x.raw[:2*n])
	}
}

// Write takes decoded PCM16LE at r's rate (from the decoder or from the
// resampler) and queues every whole 20 ms frame on r's sockets.
func (r *sipRate) Write(p []byte) (int, error) {
	frame, total := r.rate/50*2, len(p)
	for len(p) > 0 {
		n := copy(r.fifo[r.fill:], p)
		r.fill += n
		p = p[n:]
		off := 0
		for r.fill-off >= frame {
			for _, s := range r.sinks {
				if s.push(r.fifo[off:off+frame], r.arrival) {
					r.dropped()
				}
			}
			off += frame
		}
		r.fill = copy(r.fifo, r.fifo[off:r.fill])
		if n == 0 { // cannot happen with a FIFO bigger than a frame
			break
		}
	}
	return total, nil
}

// resync copies the listening sockets after bots came or went and makes
// the decoder or resampler of a rate that gets its first listener.
func (x *sipRx) resync() {
	x.c.rx.mu.Lock()
	sinks := x.c.rx.sinks
	x.c.rx.mu.Unlock()
	for i := range x.rates {
		r := &x.rates[i]
		var first bool
		r.sinks, first = sinksAt(r.sinks, sinks, r.rate)
		if !first {
			continue
		}
		r.fill = 0
		var err error
		switch {
		case x.g711 == nil:
			r.dec, err = media.NewDecoder(r.rate)
		case r.rate != media.G711SampleRate:
			r.up = newInterpolator(r.rate / media.G711SampleRate)
		}
		if err != nil {
			x.c.log.Error("sip caller audio", "rate", r.rate, "err", err)
			r.sinks = r.sinks[:0]
		}
	}
}

// close ends the receive path: later packets are ignored.
func (x *sipRx) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
}
