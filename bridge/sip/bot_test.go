package sip

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
)

// toneFrames is one second of a 440 Hz tone as 50 PCMU frames.
var toneFrames = func() [][]byte {
	frames := make([][]byte, 50)
	pcm := make([]int16, plainrtp.FrameSamples)
	for f := range frames {
		for i := range pcm {
			n := f*plainrtp.FrameSamples + i
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(n)/8000))
		}
		frames[f] = make([]byte, plainrtp.FrameSamples)
		plainrtp.EncodeG711(frames[f], pcm, plainrtp.PayloadPCMU)
	}
	return frames
}()

// testBot is the bridge side of the SIPp tests: an Acceptor whose calls
// write a PCMU tone through the call's transport from the ACK on and count
// what comes back (SIPp's -rtp_echo returns it unchanged).
type testBot struct {
	t        testing.TB
	capacity int32 // 0: unlimited
	block    bool  // Accept waits for its ctx (CANCEL, timeout)
	// hangupAfter > 0: the bot hangs up (Server.Hangup) after that many
	// echoed packets.
	hangupAfter int64
	srv         atomic.Pointer[Server]

	active   atomic.Int32
	acceptCh chan error // Accept's outcome, one per INVITE
	calls    chan *botCall
	pending  chan *Call // calls waiting in a blocked Accept
}

func newTestBot(t testing.TB) *testBot {
	return &testBot{t: t, acceptCh: make(chan error, 64), calls: make(chan *botCall, 64), pending: make(chan *Call, 64)}
}

type botCall struct {
	bot     *testBot
	c       *Call
	stop    chan struct{}
	wg      sync.WaitGroup
	started chan struct{}
	ended   chan error // the cause, once
	echoed  atomic.Int64
	corrupt atomic.Int64 // echoed packets whose payload is not what we sent
	hung    atomic.Bool

	// RFC 4733 key presses: digits in order, one per event (deduplicated by
	// RTP timestamp), written by HandleRTP, read after the end.
	digits   []byte
	lastDTMF uint32
	anyDTMF  bool
}

// dtmfDigits are the RFC 4733 §3.2 event codes 0-15.
const dtmfDigits = "0123456789*#ABCD"

func (b *testBot) Accept(ctx context.Context, c *Call) (CallHandler, error) {
	if n := b.active.Add(1); b.capacity > 0 && n > b.capacity {
		b.active.Add(-1)
		b.outcome(ErrBusy)
		return nil, ErrBusy
	}
	if b.block {
		b.pending <- c
		<-ctx.Done()
		b.active.Add(-1)
		err := context.Cause(ctx)
		b.outcome(err)
		return nil, err
	}
	bc := &botCall{bot: b, c: c, stop: make(chan struct{}), started: make(chan struct{}), ended: make(chan error, 1)}
	b.outcome(nil)
	b.calls <- bc
	return bc, nil
}

// outcome records Accept's result for tests that check it (the first 64).
func (b *testBot) outcome(err error) {
	select {
	case b.acceptCh <- err:
	default:
	}
}

func (bc *botCall) Started() {
	close(bc.started)
	bc.wg.Add(1)
	go bc.speak()
}

// speak writes the tone every 20 ms until the call ends.
func (bc *botCall) speak() {
	defer bc.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: bc.c.Media().Codec.PayloadType, SSRC: 0xb07, Marker: true}}
	for i := 0; ; i++ {
		p.SequenceNumber = uint16(i)
		p.Timestamp = uint32(i * plainrtp.FrameSamples)
		p.Payload = toneFrames[i%len(toneFrames)]
		if err := bc.c.Transport.WriteRTP(p); err != nil && !errors.Is(err, plainrtp.ErrClosed) {
			bc.bot.t.Errorf("WriteRTP: %v", err)
		}
		p.Marker = false
		select {
		case <-bc.stop:
			return
		case <-tick.C:
		}
	}
}

func (bc *botCall) HandleRTP(p *rtp.Packet) {
	if m := bc.c.Media(); m.HasDTMF && p.PayloadType == m.DTMFPayloadType && len(p.Payload) >= 4 {
		if p.Payload[1]&0x80 != 0 && p.Payload[0] < 16 && (!bc.anyDTMF || p.Timestamp != bc.lastDTMF) {
			bc.digits = append(bc.digits, dtmfDigits[p.Payload[0]])
			bc.lastDTMF, bc.anyDTMF = p.Timestamp, true
		}
		return
	}
	if p.SSRC != 0xb07 {
		return
	}
	if string(p.Payload) != string(toneFrames[int(p.SequenceNumber)%len(toneFrames)]) {
		bc.corrupt.Add(1)
	}
	if n := bc.echoed.Add(1); bc.bot.hangupAfter > 0 && n >= bc.bot.hangupAfter && bc.hung.CompareAndSwap(false, true) {
		if err := bc.bot.srv.Load().Hangup(bc.c.CallID); err != nil {
			bc.bot.t.Errorf("Hangup: %v", err)
		}
	}
}

func (bc *botCall) Ended(cause error) {
	close(bc.stop)
	bc.wg.Wait()
	bc.bot.active.Add(-1)
	bc.ended <- cause
}

// nextCall waits for the next accepted call.
func (b *testBot) nextCall(t testing.TB) *botCall {
	t.Helper()
	select {
	case bc := <-b.calls:
		return bc
	case <-time.After(20 * time.Second):
		t.Fatal("no call accepted")
		return nil
	}
}

// endCause waits for the call's end.
func (bc *botCall) endCause(t testing.TB) error {
	t.Helper()
	select {
	case err := <-bc.ended:
		return err
	case <-time.After(40 * time.Second):
		t.Fatal("call did not end")
		return nil
	}
}
