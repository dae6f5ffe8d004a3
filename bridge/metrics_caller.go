package bridge

import "github.com/prometheus/client_golang/prometheus"

// callerMetrics are the series of the receive path: the caller's audio and
// keypad (caller.go) and the audio handed to listening bots (botws.go).
// Updates are atomic and allocation-free: they run per packet and per frame.
type callerMetrics struct {
	packets   *prometheus.CounterVec // by kind: audio, dtmf, other
	lost      prometheus.Counter
	late      prometheus.Counter
	concealed *prometheus.CounterVec // by method: plc, fec
	sent      prometheus.Counter
	dropped   prometheus.Counter
	dtmfIn    prometheus.Counter
	latency   prometheus.Histogram

	audioPackets, dtmfPackets, otherPackets prometheus.Counter
	plc, fec                                prometheus.Counter
}

// newCallerMetrics registers the receive path's series on reg.
func newCallerMetrics(reg prometheus.Registerer) *callerMetrics {
	m := &callerMetrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicebridge_caller_packets_received_total",
			Help: "RTP packets received on callers' tracks, by kind: audio (Opus or G.711), dtmf (RFC 4733 telephone-event), other (malformed or an unknown payload type).",
		}, []string{"kind"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_caller_packets_lost_total",
			Help: "RTP packets of callers' tracks that never arrived, by sequence number (counted once the stream is 64 packets past them).",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_caller_packets_late_total",
			Help: "Caller audio packets dropped because they came after their audio was concealed (late beyond the jitter buffer), or twice.",
		}),
		concealed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicebridge_caller_frames_concealed_total",
			Help: "Concealments (at most 20 ms each) of caller audio, by method: plc (the decoder's packet-loss concealment), fec (from the next packet's in-band FEC data, where it has some).",
		}, []string{"method"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_caller_audio_frames_sent_total",
			Help: "20 ms frames of caller audio written to listening bot sockets.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_caller_audio_frames_dropped_total",
			Help: "20 ms frames of caller audio dropped (oldest first) because a bot read its socket too slowly.",
		}),
		dtmfIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_dtmf_events_in_total",
			Help: "Key presses received from callers (RFC 4733) and sent to bots as dtmf events.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "voicebridge_caller_audio_latency_seconds",
			Help:    "From a caller packet's arrival to the bot socket write of the frame it completed (received frames only).",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.2},
		}),
	}
	m.audioPackets = m.packets.WithLabelValues("audio")
	m.dtmfPackets = m.packets.WithLabelValues("dtmf")
	m.otherPackets = m.packets.WithLabelValues("other")
	m.plc = m.concealed.WithLabelValues("plc")
	m.fec = m.concealed.WithLabelValues("fec")
	reg.MustRegister(m.packets, m.lost, m.late, m.concealed, m.sent, m.dropped, m.dtmfIn, m.latency)
	return m
}
