package media

// lossWindow is how many sequence numbers a LossCounter waits before it
// counts a missing one as lost: 64 packets, 1.28 s of 20 ms audio, far
// beyond any jitter buffer wait.
const lossWindow = 64

// lossRestart is the sequence jump, either way, taken as a restart of the
// stream rather than a burst of loss or a very old packet (RFC 3550 §A.1's
// MAX_DROPOUT).
const lossRestart = 3000

// LossCounter counts the RTP packets of one stream that never arrived, by
// sequence number (RFC 3550 §6.4.1's "cumulative number of packets lost",
// made final): a number counts as lost once the stream is lossWindow
// numbers past it without it. Reordered and late packets within the window
// are not lost; duplicates are ignored. Used from one goroutine; no
// allocation.
type LossCounter struct {
	started bool
	first   int64 // extended sequence number of the first packet
	highest int64 // extended highest sequence number
	got     [lossWindow]bool
}

// Add records a packet's sequence number and returns how many packets
// became lost with it.
func (l *LossCounter) Add(seq uint16) (lost int) {
	if !l.started {
		l.started = true
		l.first, l.highest = int64(seq), int64(seq)
		l.got[int64(seq)%lossWindow] = true
		return 0
	}
	d := int64(int16(seq - uint16(l.highest)))
	switch {
	case d > lossRestart || d < -lossRestart:
		*l = LossCounter{}
		return l.Add(seq)
	case d <= 0:
		if -d < lossWindow && l.highest+d >= l.first {
			l.got[(l.highest+d)%lossWindow] = true
		}
		return 0
	}
	for e := l.highest + 1; e <= l.highest+d; e++ {
		i := e % lossWindow
		if e-lossWindow >= l.first && !l.got[i] {
			lost++ // e-lossWindow leaves the window unreceived
		}
		l.got[i] = false
	}
	l.highest += d
	l.got[l.highest%lossWindow] = true
	return lost
}
