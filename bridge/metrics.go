package bridge

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one Server, on its own registry (so
// that several Servers, as in tests, never collide). All updates are atomic
// and allocation-free, so the per-frame hooks may call them.
type metrics struct {
	reg *prometheus.Registry

	callsActive   prometheus.Gauge
	callsTotal    prometheus.Counter
	callsRejected *prometheus.CounterVec // by reason: max_calls, shutting_down, tts, bad_request, error
	framesSent    prometheus.Counter
	lateFrames    prometheus.Counter
	pacingError   prometheus.Histogram
	ttsErrors     *prometheus.CounterVec // by kind: error, disconnected, redial_failed
	ttsReconnects prometheus.Counter
	ttsTTFB       prometheus.Histogram
	addedLatency  prometheus.Histogram
	caller        *callerMetrics   // the receive path (metrics_caller.go)
	streams       *streamCollector // the media streams' counters, summed at scrape time
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		callsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "voicebridge_calls_active", Help: "Calls currently running.",
		}),
		callsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_calls_total", Help: "Calls created since start.",
		}),
		callsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicebridge_calls_rejected_total",
			Help: "POST /v1/calls refused after the request was read: max_calls, shutting_down, tts (the TTS refused or was unreachable), whip (the WHIP endpoint refused or was unreachable), bad_request, error.",
		}, []string{"reason"}),
		framesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_frames_sent_total", Help: "20 ms Opus frames written to tracks (speech and silence).",
		}),
		lateFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_late_frames_total", Help: "Frames the pacer sent after their deadline (catch-up).",
		}),
		pacingError: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "voicebridge_pacing_error_seconds",
			Help:    "How late each frame left against its start + n*20ms deadline.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1},
		}),
		ttsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicebridge_tts_errors_total",
			Help: "TTS trouble during calls, by kind: error (a service error message), disconnected, redial_failed, interrupted (a generation cut after some of its audio was heard).",
		}, []string{"kind"}),
		ttsReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicebridge_tts_reconnects_total", Help: "TTS connections re-established after a drop.",
		}),
		ttsTTFB: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "voicebridge_tts_ttfb_seconds",
			Help:    "From the text that asked for generation (flush or try_trigger_generation) to the first audio of the TTS.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 11), // 10ms .. ~10s
		}),
		addedLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "voicebridge_first_audio_added_latency_seconds",
			Help:    "From the first TTS audio of a generation to its first frame on the wire: the bridge's own added latency.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.2, 0.5},
		}),
	}
	m.streams = newStreamCollector()
	for _, k := range []string{"error", "disconnected", "redial_failed", "interrupted"} {
		m.ttsErrors.WithLabelValues(k) // export zeros
	}
	m.reg.MustRegister(m.callsActive, m.callsTotal, m.callsRejected, m.framesSent, m.lateFrames,
		m.pacingError, m.ttsErrors, m.ttsReconnects, m.ttsTTFB, m.addedLatency, m.streams,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.caller = newCallerMetrics(m.reg)
	return m
}

// onFrame is media.StreamConfig.OnFrame: per frame, on every call's pacer
// goroutine. Atomic and allocation-free.
func (m *metrics) onFrame(pacingError time.Duration, late bool) {
	m.framesSent.Inc()
	if late {
		m.lateFrames.Inc()
	}
	m.pacingError.Observe(pacingError.Seconds())
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
