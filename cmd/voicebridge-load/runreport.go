package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// runReport is one run's measurements.
type runReport struct {
	Name     string  `json:"name"`
	Calls    int     `json:"calls"`
	Duty     float64 `json:"duty_target"`
	WindowS  float64 `json:"window_s"`
	Pass     bool    `json:"pass"`
	Why      string  `json:"why,omitempty"`
	SetupErr int     `json:"setup_errors"`
	SetupS   float64 `json:"setup_s"`
	FirstErr string  `json:"first_error,omitempty"`

	// Receivers (kernel receive timestamps, every call).
	PacingP50 float64 `json:"pacing_p50_ms"`
	PacingP99 float64 `json:"pacing_p99_ms"`
	PacingMax float64 `json:"pacing_max_ms"`
	Packets   uint64  `json:"packets"`
	Expected  uint64  `json:"packets_expected"`
	Gaps      uint64  `json:"seq_gaps"`
	Reorder   uint64  `json:"reordered"`
	Skips     uint64  `json:"ts_skips"`
	RxLate    uint64  `json:"rx_late_frames"`
	Unparsed  uint64  `json:"unparsed"`
	RxDrops   uint32  `json:"rx_socket_drops"` // lost in the receivers' socket buffer (not the bridge's fault)
	RxUnknown uint64  `json:"rx_unknown_source"`
	BotErrs   int     `json:"bot_errors"`
	DutyMeas  float64 `json:"duty_measured"`
	SpeechS   float64 `json:"speech_audio_s"`

	// Bridge's own metrics, deltas over the window.
	BridgeLate      float64        `json:"bridge_late_frames"`
	BridgeFrames    float64        `json:"bridge_frames_sent"`
	BridgePacingP99 float64        `json:"bridge_pacing_p99_ms"`
	AddedFirstP50   float64        `json:"added_first_audio_p50_ms"`
	AddedFirstP99   float64        `json:"added_first_audio_p99_ms"`
	AddedFirstN     float64        `json:"added_first_audio_n"`
	TTSFirstByteP50 float64        `json:"tts_first_byte_p50_ms"`
	MetricNames     []string       `json:"metric_names_used"`
	TextToSpeech    Summary        `json:"text_to_first_speech"`
	Barge           Summary        `json:"barge_in"`
	ClearToSilence  Summary        `json:"clear_to_silence"`
	BargeNA         int            `json:"barge_in_not_playing"`
	Texts           int            `json:"texts"`
	TextErrs        int            `json:"text_errors"`
	Missed          int            `json:"texts_without_speech"`
	Events          map[string]int `json:"ws_events"`
	Audio           audioSummary   `json:"audio_check"`

	// CPU and memory over the window.
	BridgeCPU      float64    `json:"bridge_cpu_cores"`       // cores busy
	GenCPU         float64    `json:"generator_cpu_cores"`    // this tool
	TTSCPU         float64    `json:"tts_cpu_cores"`          // the separate TTS process, with its espeak-ng children
	MachineCPU     float64    `json:"machine_cpu_cores"`      // all processes
	OtherCPU       float64    `json:"other_cpu_cores"`        // machine − bridge − generator
	OtherProcs     []busyProc `json:"other_processes"`        // who else was busy in the window
	CPUPerCallMs   float64    `json:"cpu_ms_per_call_s"`      // bridge CPU-ms per call-second
	CPUPerSpeechS  float64    `json:"cpu_s_per_speech_s"`     // bridge CPU-s per speech audio-second
	CPUPerWireS    float64    `json:"cpu_s_per_wire_audio_s"` // bridge CPU-s per audio-second on the wire (speech+silence)
	RSSBase        float64    `json:"rss_base_mib"`
	RSS            float64    `json:"rss_mib"`
	RSSPerCallKiB  float64    `json:"rss_kib_per_call"`
	GoroutinesBase float64    `json:"goroutines_base"`
	Goroutines     float64    `json:"goroutines"`
	GorPerCall     float64    `json:"goroutines_per_call"`
	Profile        *profile   `json:"bridge_profile,omitempty"` // perf samples of the bridge in the window
	ShutdownS      float64    `json:"shutdown_s"`
}

type audioSummary struct {
	Calls        int     `json:"calls"`
	SpeechFrames int     `json:"speech_frames"`
	LoudFrac     float64 `json:"speech_frames_with_energy"`
	SpeechDBFS   float64 `json:"speech_mean_dbfs"`
	SilenceFr    int     `json:"silence_frames"`
	SilenceMaxDB float64 `json:"silence_max_dbfs"`
	DecodeErrs   int     `json:"decode_errors"`
}

// pacingLimitP99 and the rest of the pass criteria of the issue.
const pacingLimitP99 = 2 * time.Millisecond

// cpuSample is the CPU counters read at one instant.
type cpuSample struct {
	at      time.Time
	bridge  procCPU
	self    time.Duration
	machine machineCPU
	ok      bool // bridge counters read
	procs   procSnapshot
}

func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now(), self: selfCPU(), procs: readAllProcs()}
	if pid > 0 {
		if c, err := readProcCPU(pid); err == nil {
			s.bridge, s.ok = c, true
		}
	}
	s.machine, _ = readMachineCPU()
	return s
}

func (r *runReport) fillCPU(a, b cpuSample, wall time.Duration, calls, bridgePID, ttsPID int) {
	sec := wall.Seconds()
	r.GenCPU = (b.self - a.self).Seconds() / sec
	r.MachineCPU = (b.machine.Busy - a.machine.Busy).Seconds() / sec
	if a.ok && b.ok {
		// Children: the embedded TTS runs espeak-ng as child processes.
		r.BridgeCPU = ((b.bridge.Self + b.bridge.Children) - (a.bridge.Self + a.bridge.Children)).Seconds() / sec
		r.CPUPerCallMs = r.BridgeCPU * 1000 / float64(calls)
	}
	r.OtherCPU = max(0, r.MachineCPU-r.BridgeCPU-r.GenCPU-r.TTSCPU)
	skip := map[int]bool{os.Getpid(): true, bridgePID: true, ttsPID: true}
	r.OtherProcs = busiest(a.procs, b.procs, wall, skip, 0.02, 5)
}

func (r *runReport) fillReceivers(live []*callClient, wall time.Duration) {
	pacing := NewHistogram(pacingWidth, pacingLimit)
	var speech uint64
	var a audioSummary
	a.SilenceMaxDB = math.Inf(-1)
	var sumSq float64
	for _, c := range live {
		s := c.Stats
		pacing.Merge(s.Pacing)
		r.Packets += s.Packets
		r.Gaps += s.Gaps
		r.Reorder += s.Reorder
		r.Skips += s.Skips
		r.RxLate += s.Late
		r.Unparsed += s.Unparsed
		speech += s.Speech
		if c.Audio != nil {
			c.Audio.mu.Lock()
			a.Calls++
			a.SpeechFrames += c.Audio.SpeechFrames
			a.LoudFrac += float64(c.Audio.SpeechLoud)
			sumSq += c.Audio.SpeechSumSq
			a.SilenceFr += c.Audio.SilenceFrames
			a.SilenceMaxDB = max(a.SilenceMaxDB, c.Audio.SilenceMaxDB)
			a.DecodeErrs += c.Audio.DecodeErrors
			c.Audio.mu.Unlock()
		}
	}
	if a.SpeechFrames > 0 {
		a.LoudFrac /= float64(a.SpeechFrames)
		a.SpeechDBFS = round(dbfs(sumSq/float64(a.SpeechFrames)), 1)
		if math.IsInf(a.SpeechDBFS, -1) {
			a.SpeechDBFS = -999 // digital silence (JSON has no −Inf)
		}
	}
	if math.IsInf(a.SilenceMaxDB, -1) {
		a.SilenceMaxDB = -999 // digital silence (JSON has no −Inf)
	}
	r.Audio = a
	r.PacingP50, r.PacingP99, r.PacingMax = ms(pacing.Quantile(0.50)), ms(pacing.Quantile(0.99)), ms(pacing.Max)
	r.Expected = uint64(len(live)) * uint64(wall/frameDuration)
	if r.Packets > 0 {
		r.DutyMeas = float64(speech) / float64(r.Packets)
	}
	r.SpeechS = float64(speech) * frameDuration.Seconds()
}

// Metric names are looked up by their parts so that the report survives a
// rename; the names used are recorded.
func (r *runReport) fillBridgeMetrics(m0, m1 scrape) {
	delta := func(name string) float64 {
		a, _ := m0.sum(name)
		b, _ := m1.sum(name)
		return b - a
	}
	if n := m1.find("_total", "late"); n != "" {
		r.BridgeLate = delta(n)
		r.MetricNames = append(r.MetricNames, n)
	} else {
		r.BridgeLate = -1 // not exported
	}
	if n := m1.find("_total", "frames", "sent"); n != "" {
		r.BridgeFrames = delta(n)
		r.MetricNames = append(r.MetricNames, n)
	}
	hist := func(parts ...string) (string, []bucket) {
		n := m1.find("_bucket", parts...)
		if n == "" {
			return "", nil
		}
		base := strings.TrimSuffix(n, "_bucket")
		r.MetricNames = append(r.MetricNames, base)
		return base, bucketDelta(m1.histogram(base), m0.histogram(base))
	}
	if _, b := hist("first_audio"); b != nil {
		r.AddedFirstP50 = finite(round(bucketQuantile(0.50, b)*1000, 2))
		r.AddedFirstP99 = finite(round(bucketQuantile(0.99, b)*1000, 2))
		r.AddedFirstN = b[len(b)-1].Count
	}
	if _, b := hist("pacing"); b != nil {
		r.BridgePacingP99 = finite(round(bucketQuantile(0.99, b)*1000, 3))
	}
	for _, p := range []string{"first_byte", "ttfb"} {
		if _, b := hist(p); b != nil {
			r.TTSFirstByteP50 = finite(round(bucketQuantile(0.50, b)*1000, 2))
			break
		}
	}
}

// judge applies the criteria: pacing p99 ≤ 2 ms and no late frames
// (the bridge's counter and the receivers' grid), with every call set up and
// at least 95% of the expected packets received.
func (r *runReport) judge() {
	var why []string
	if r.SetupErr > 0 {
		why = append(why, fmt.Sprintf("%d calls failed to set up", r.SetupErr))
	}
	if r.BotErrs > 0 {
		why = append(why, fmt.Sprintf("%d bot WebSockets failed to open", r.BotErrs))
	}
	if r.PacingP99 > ms(pacingLimitP99) {
		why = append(why, fmt.Sprintf("pacing p99 %.3f ms > 2 ms", r.PacingP99))
	}
	if r.BridgeLate > 0 {
		why = append(why, fmt.Sprintf("bridge counted %.0f late frames", r.BridgeLate))
	}
	if r.RxLate > 0 {
		why = append(why, fmt.Sprintf("%d frames arrived > 20 ms behind their grid", r.RxLate))
	}
	if r.Packets < r.Expected*95/100 {
		why = append(why, fmt.Sprintf("received %d of %d expected packets", r.Packets, r.Expected))
	}
	r.Pass = len(why) == 0
	r.Why = strings.Join(why, "; ")
}

// procRSS is the bridge's resident memory: /proc when the PID is known,
// else process_resident_memory_bytes.
func procRSS(pid int, m scrape) float64 {
	if pid > 0 {
		if v, err := readProcRSS(pid); err == nil {
			return float64(v)
		}
	}
	v, _ := m.sum("process_resident_memory_bytes")
	return v
}

func round(v float64, digits int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// finite maps NaN (no observations) to −1: JSON has no NaN.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}
