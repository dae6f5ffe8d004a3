package bridge

import (
	"slices"
	"testing"
	"time"
)

// TestSIPInviteToOK measures INVITE → 200 OK with a real bot dial (the
// bridge dials the test bot's WebSocket and the embedded TTS before it
// answers), call after call on loopback. It asserts only that every call
// was answered; the numbers are logged for the README (speed targets are
// not asserted in unit tests).
func TestSIPInviteToOK(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const calls = 40
	_, bots, addr := sipBridge(t, nil)
	var lat []time.Duration
	for range calls {
		u := newUAC(t, addr)
		start := time.Now()
		code, m := u.invite()
		d := time.Since(start)
		if code != 200 {
			t.Fatalf("INVITE answered %d:\n%s", code, m)
		}
		lat = append(lat, d)
		bot := bots.next(t)
		u.bye()
		bot.expect(t, "closed")
	}
	slices.Sort(lat)
	t.Logf("INVITE → 200 OK over %d calls (bot dial + TTS dial): p50 %v, p99 %v, max %v",
		calls, percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1])
}

// pacingErrors are the receiver-side deviations of packet arrivals from
// the 20 ms grid anchored at the first packet (the sender's grid as
// observed: arrival i against first + i·20 ms, by RTP timestamp).
func pacingErrors(pk []rxPacket, clock uint32) []time.Duration {
	if len(pk) == 0 {
		return nil
	}
	var out []time.Duration
	t0, ts0 := pk[0].at, pk[0].hdr.Timestamp
	for _, p := range pk[1:] {
		want := t0.Add(time.Duration(p.hdr.Timestamp-ts0) * time.Second / time.Duration(clock))
		d := p.at.Sub(want)
		if d < 0 {
			d = -d
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}
