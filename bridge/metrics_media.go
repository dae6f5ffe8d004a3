package bridge

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/voicebridge/voicebridge/media"
)

// streamCollector exports the media streams' counters (media.Stats) at
// scrape time: the sum over the live streams plus the totals of the closed
// ones. Nothing runs per frame; a scrape takes each live stream's Stats
// (atomic loads and one short lock for the queue length).
type streamCollector struct {
	mu     sync.Mutex
	live   map[*media.Stream]struct{} // guarded by mu
	closed media.Stats                // guarded by mu: sums of closed streams

	counters []streamCounter
	queued   *prometheus.Desc
}

type streamCounter struct {
	desc *prometheus.Desc
	get  func(media.Stats) uint64
}

func newStreamCollector() *streamCollector {
	c := &streamCollector{live: make(map[*media.Stream]struct{})}
	add := func(name, help string, get func(media.Stats) uint64) {
		c.counters = append(c.counters, streamCounter{prometheus.NewDesc(name, help, nil, nil), get})
	}
	add("voicebridge_speech_frames_total", "Frames sent with speech (encoded from queued audio).",
		func(s media.Stats) uint64 { return s.SpeechFrames })
	add("voicebridge_silence_frames_total", "Frames sent as the precomputed silence packet.",
		func(s media.Stats) uint64 { return s.SilenceFrames })
	add("voicebridge_underrun_frames_total", "Silence frames between two speech frames of one generation: the TTS fell behind real time (starvation).",
		func(s media.Stats) uint64 { return s.Underruns })
	add("voicebridge_skipped_frames_total", "Grid slots skipped after a pacer hiccup longer than the catch-up allowance.",
		func(s media.Stats) uint64 { return s.SkippedFrames })
	add("voicebridge_encode_errors_total", "Opus encoder errors (silence sent instead).",
		func(s media.Stats) uint64 { return s.EncodeErrors })
	add("voicebridge_rtp_write_errors_total", "Errors writing RTP packets to the track.",
		func(s media.Stats) uint64 { return s.WriteErrors })
	add("voicebridge_talkspurts_total", "Packets sent with the marker bit (starts of talkspurts).",
		func(s media.Stats) uint64 { return s.Talkspurts })
	add("voicebridge_generations_total", "Generations whose last frame went on the wire (done events).",
		func(s media.Stats) uint64 { return s.Generations })
	add("voicebridge_clears_total", "Playout clears (barge-in).",
		func(s media.Stats) uint64 { return s.Clears })
	add("voicebridge_drains_total", "Times the pacer drained the resampler's held-back audio as the playout queue ran dry (the end of an utterance without an end of generation, or a late TTS).",
		func(s media.Stats) uint64 { return s.Drains })
	add("voicebridge_drain_resumes_total", "Drains whose padding was taken back because more audio of the generation came in time (seamless).",
		func(s media.Stats) uint64 { return s.Resumes })
	add("voicebridge_preroll_timeouts_total", "Talkspurts started because the pre-roll wait ran out rather than on enough queued audio or a generation end.",
		func(s media.Stats) uint64 { return s.PreRollWaits })
	c.queued = prometheus.NewDesc("voicebridge_queued_frames", "20 ms frames queued for playout now, over all calls.", nil, nil)
	return c
}

// add starts exporting st's counters.
func (c *streamCollector) add(st *media.Stream) {
	c.mu.Lock()
	c.live[st] = struct{}{}
	c.mu.Unlock()
}

// closed folds a closed stream's final counters into the totals
// (media.StreamConfig.OnClose).
func (c *streamCollector) streamClosed(st *media.Stream, final media.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.live[st]; !ok {
		return
	}
	delete(c.live, st)
	c.closed = sumStats(c.closed, final)
}

func sumStats(a, b media.Stats) media.Stats {
	a.FramesSent += b.FramesSent
	a.SpeechFrames += b.SpeechFrames
	a.SilenceFrames += b.SilenceFrames
	a.LateFrames += b.LateFrames
	a.SkippedFrames += b.SkippedFrames
	a.Underruns += b.Underruns
	a.Generations += b.Generations
	a.Talkspurts += b.Talkspurts
	a.Clears += b.Clears
	a.WriteErrors += b.WriteErrors
	a.EncodeErrors += b.EncodeErrors
	a.Drains += b.Drains
	a.Resumes += b.Resumes
	a.PreRollWaits += b.PreRollWaits
	a.QueuedFrames += b.QueuedFrames
	return a
}

// Describe implements prometheus.Collector.
func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, k := range c.counters {
		ch <- k.desc
	}
	ch <- c.queued
}

// Collect implements prometheus.Collector.
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sum := c.closed
	sum.QueuedFrames = 0 // a closed stream queues nothing
	for st := range c.live {
		sum = sumStats(sum, st.Stats())
	}
	c.mu.Unlock()
	for _, k := range c.counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.get(sum)))
	}
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(sum.QueuedFrames))
}
