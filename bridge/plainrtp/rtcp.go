package plainrtp

import (
	"time"

	"github.com/pion/rtcp"
)

// ntpEpochOffset is the seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// ntpTime is t as a 64-bit NTP timestamp (RFC 3550 §4).
func ntpTime(t time.Time) uint64 {
	ns := uint64(t.UnixNano())
	sec := ns/1e9 + ntpEpochOffset
	frac := (ns % 1e9) << 32 / 1e9
	return sec<<32 | frac
}

// sendReport sends an RTCP sender report (RFC 3550 §6.4.1) from the packet
// and octet counts, if anything was sent yet. The RTP timestamp is the last
// packet's, advanced by the wall time since it left at the codec's clock, so
// the receiver can map it to now. Runs every ReportInterval (allocating is
// fine here).
func (t *Transport) sendReport(now time.Time) {
	dst := t.remoteRTCP.Load()
	packets := t.packetsSent.Load()
	if dst == nil || packets == 0 {
		return
	}
	since := now.UnixNano() - t.lastSent.Load()
	if since < 0 {
		since = 0
	}
	ts := t.lastTS.Load() + uint32(uint64(since)*uint64(t.cfg.ClockRate)/uint64(time.Second))
	sr := rtcp.SenderReport{
		SSRC:        t.ssrc.Load(),
		NTPTime:     ntpTime(now),
		RTPTime:     ts,
		PacketCount: uint32(packets),
		OctetCount:  uint32(t.octetsSent.Load()),
	}
	b, err := sr.Marshal()
	if err != nil {
		return
	}
	if _, err := t.rtcpConn.WriteToUDPAddrPort(b, *dst); err == nil {
		t.reports.Add(1)
	}
}
