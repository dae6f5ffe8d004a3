package sip

import (
	"fmt"
	"net"
	"sort"
	"testing"
	"time"
)

// BenchmarkInviteTo200 measures INVITE → 200 OK on loopback UDP with a bot
// that takes calls at once (the -bot-url dial is not in it): negotiation,
// port pair, answer. Reports p50/p99 in ms; each call is ACKed and BYEd.
func BenchmarkInviteTo200(b *testing.B) {
	bot := newTestBot(b)
	srv, _ := testServer(b, "udp", bot, nil)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	to, _ := net.ResolveUDPAddr("udp", srv.Addrs()[0].Addr)
	const sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	var lat []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := &rawDialog{t: b, c: c, to: to, callID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)}
		start := time.Now()
		d.send("INVITE", 1, sdp)
		ok := d.final(1)
		lat = append(lat, time.Since(start))
		if ok.StatusCode != 200 {
			b.Fatalf("INVITE: %d", ok.StatusCode)
		}
		d.toTag, _ = ok.To().Params.Get("tag")
		d.send("ACK", 1, "")
		bc := bot.nextCall(b)
		<-bc.started
		d.send("BYE", 2, "")
		d.final(2)
		bc.endCause(b)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
