package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/bridge/sip"
	"github.com/voicebridge/voicebridge/media"
)

// sipRxQueue is how many of the caller's packets wait between a SIP call's
// RTP transport and its receive loop: 32 packets, 640 ms of 20 ms audio.
// The loop takes each at once; only a stalled loop fills it, and then the
// oldest packet is dropped (it is counted lost and concealed).
const sipRxQueue = 32

// sipCodecs are the receive loop's codecs of a SIP call: the answer's audio
// payload type and its telephone-event, at the codec's clock.
func sipCodecs(codec media.Codec, m sip.Media) rxCodecs {
	rc := rxCodecs{audio: m.Codec.PayloadType, codec: codec, hasAudio: true}
	if m.HasDTMF {
		rc.addDTMF(m.DTMFPayloadType, int(m.Codec.ClockRate))
	}
	return rc
}

// startSIPRx starts a SIP call's receive loop (a goroutine of the call,
// stopped by its context) fed by the queue sipHandler.HandleRTP fills.
func (c *Session) startSIPRx(codec media.Codec, m sip.Media) (*rtpQueue, error) {
	l, err := newRxLoop(c, sipCodecs(codec, m))
	if err != nil {
		return nil, err
	}
	q := newRTPQueue(c.ctx)
	c.wg.Go(func() { l.run(q) })
	return q, nil
}

// queuedPacket is a packet waiting in an rtpQueue: the header fields the
// receive loop reads and a copy of the payload.
type queuedPacket struct {
	marker  bool
	pt      uint8
	seq     uint16
	ts      uint32
	ssrc    uint32
	arrival time.Time
	n       int
	payload [1500]byte
}

// rtpQueue hands a SIP call's packets from the RTP transport's read
// goroutine (push, which never blocks but for the ring's short lock) to
// the call's receive loop (next, its rxSource). A ring of sipRxQueue
// packets allocated once.
type rtpQueue struct {
	ctx   context.Context // the call's: its end ends the source
	ready chan struct{}   // cap 1: a packet was pushed
	timer *time.Timer     // next's deadline; used by the loop only
	buf   []byte          // the payload of the packet next returned

	mu sync.Mutex
	// The following fields are guarded by mu.
	ring     [sipRxQueue]queuedPacket
	head, n  int
	overflow uint64 // packets dropped because the loop fell behind
}

func newRTPQueue(ctx context.Context) *rtpQueue {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &rtpQueue{ctx: ctx, ready: make(chan struct{}, 1), timer: t, buf: make([]byte, 1500)}
}

// push queues a copy of p that arrived at arrival; a full ring drops its
// oldest packet.
func (q *rtpQueue) push(p *rtp.Packet, arrival time.Time) {
	q.mu.Lock()
	if q.n == sipRxQueue {
		q.head = (q.head + 1) % sipRxQueue
		q.n--
		q.overflow++
	}
	s := &q.ring[(q.head+q.n)%sipRxQueue]
	s.marker, s.pt, s.seq, s.ts, s.ssrc, s.arrival = p.Marker, p.PayloadType, p.SequenceNumber, p.Timestamp, p.SSRC, arrival
	s.n = copy(s.payload[:], p.Payload)
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop moves the oldest packet into pkt (its payload into q.buf).
func (q *rtpQueue) pop(pkt *rtp.Packet) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return time.Time{}, false
	}
	s := &q.ring[q.head]
	q.head = (q.head + 1) % sipRxQueue
	q.n--
	pkt.Version, pkt.Marker, pkt.PayloadType, pkt.SequenceNumber, pkt.Timestamp, pkt.SSRC = 2, s.marker, s.pt, s.seq, s.ts, s.ssrc
	pkt.Payload = q.buf[:copy(q.buf, s.payload[:s.n])]
	return s.arrival, true
}

// next is the receive loop's rxSource.
func (q *rtpQueue) next(pkt *rtp.Packet, deadline time.Time) (time.Time, error) {
	for {
		if q.ctx.Err() != nil {
			return time.Time{}, errRxEnd
		}
		if at, ok := q.pop(pkt); ok {
			return at, nil
		}
		var due <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return time.Time{}, errRxDue
			}
			q.timer.Reset(d)
			due = q.timer.C
		}
		select {
		case <-q.ready:
			q.timer.Stop()
		case <-due:
			return time.Time{}, errRxDue
		case <-q.ctx.Done():
			q.timer.Stop()
			return time.Time{}, errRxEnd
		}
	}
}

// dropped is the number of packets the queue dropped.
func (q *rtpQueue) dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflow
}
