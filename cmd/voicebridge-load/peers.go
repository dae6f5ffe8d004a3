package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hraban/opus"
	"github.com/zaf/resample"
)

// encSettings are the Opus settings every peer is run at: voicebridge's
// defaults, so the comparison is at equal work.
type encSettings struct {
	App        string `json:"application"` // voip, audio, lowdelay
	Bitrate    int    `json:"bitrate"`
	Complexity int    `json:"complexity"`
	// VBR is "constrained" (libopus' default, which the bridge keeps) or
	// "off" (CBR).
	VBR      string `json:"vbr"`
	FEC      bool   `json:"fec"`
	LossPct  int    `json:"packet_loss_pct"`
	DTX      bool   `json:"dtx"`
	InRate   int    `json:"input_rate"`      // the TTS's PCM rate
	SoxrQ    int    `json:"soxr_quality"`    // zaf/resample quality constant
	SoxrBits int    `json:"soxr_precision"`  // the same as ffmpeg's aresample precision
	Source   string `json:"settings_source"` // where these came from
}

func (s encSettings) opusApp() opus.Application {
	switch s.App {
	case "audio":
		return opus.AppAudio
	case "lowdelay":
		return opus.AppRestrictedLowdelay
	}
	return opus.AppVoIP
}

// peerResult is one peer's cost.
type peerResult struct {
	Name      string  `json:"name"`
	What      string  `json:"what"`
	AudioS    float64 `json:"audio_s"`
	CPUS      float64 `json:"cpu_s"` // median over repeats
	PerAudioS float64 `json:"cpu_s_per_audio_s"`
	// Marginal cost: (CPU of the full input − CPU of a short one) ÷ (the
	// difference in audio), which leaves out process start-up.
	ShortAudioS float64   `json:"short_audio_s,omitempty"`
	ShortCPUS   float64   `json:"short_cpu_s,omitempty"`
	Marginal    float64   `json:"marginal_cpu_s_per_audio_s"`
	Repeats     []float64 `json:"cpu_s_repeats"`
	Packets     int       `json:"rtp_packets"`
	Err         string    `json:"error,omitempty"`
}

// speechPCM is the peers' input: espeak-ng speech at the TTS rate and, for
// the bare encoder, the same resampled to 48 kHz (by sox, outside the
// measurement).
type speechPCM struct {
	In, At48k []byte // PCM16LE mono
	InPath    string
	Seconds   float64
	// A short prefix, to take process start-up out of the peers' cost.
	ShortPath    string
	ShortSeconds float64
}

var errNoSpeech = errors.New("load: could not make speech PCM")

// makeSpeech synthesizes the utterances with espeak-ng and repeats them to
// at least seconds of audio.
func makeSpeech(ctx context.Context, dir string, texts []string, rate int, seconds float64) (*speechPCM, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var one, one48 []byte
	for i, t := range texts {
		wav := filepath.Join(dir, fmt.Sprintf("u%d.wav", i))
		if out, err := exec.CommandContext(ctx, "espeak-ng", "-v", "ar", "-w", wav, t).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%w: espeak-ng: %v: %s", errNoSpeech, err, out)
		}
		for _, r := range []int{rate, 48000} {
			out, err := exec.CommandContext(ctx, "sox", wav, "-t", "raw", "-r", strconv.Itoa(r), "-e", "signed", "-b", "16", "-c", "1", "-L", "-").Output()
			if err != nil {
				return nil, fmt.Errorf("%w: sox: %v", errNoSpeech, err)
			}
			if r == 48000 {
				one48 = append(one48, out...)
			} else {
				one = append(one, out...)
			}
		}
	}
	if len(one) == 0 {
		return nil, errNoSpeech
	}
	p := &speechPCM{}
	for float64(len(p.In))/float64(2*rate) < seconds {
		p.In = append(p.In, one...)
		p.At48k = append(p.At48k, one48...)
	}
	p.Seconds = float64(len(p.In)) / float64(2*rate)
	p.InPath = filepath.Join(dir, "speech.raw")
	if err := os.WriteFile(p.InPath, p.In, 0o644); err != nil {
		return nil, err
	}
	short := p.In[:min(len(p.In), 2*rate*2)] // 2 s
	p.ShortSeconds = float64(len(short)) / float64(2*rate)
	p.ShortPath = filepath.Join(dir, "speech-short.raw")
	return p, os.WriteFile(p.ShortPath, short, 0o644)
}

// udpSink counts datagrams on a loopback port, so that peers sending RTP
// have a receiver (and do not get ICMP errors).
type udpSink struct {
	conn *net.UDPConn
	n    chan int
}

func newUDPSink() (*udpSink, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	s := &udpSink{conn: c, n: make(chan int, 1)}
	go func() {
		buf := make([]byte, 2048)
		n := 0
		for {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				s.n <- n
				return
			}
			n++
		}
	}()
	return s, nil
}

func (s *udpSink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// close stops the sink and returns the datagrams it counted.
func (s *udpSink) close() int {
	s.conn.Close()
	return <-s.n
}

// ffmpegArgs encodes the raw PCM at in into RTP to 127.0.0.1:port (runChild
// replaces the placeholder "PORT").
func ffmpegArgs(s encSettings, in, port string) []string {
	vbr := "constrained"
	if s.VBR == "off" {
		vbr = "off"
	}
	fec := "0" // -fec:a, not -fec: the RTP muxer has an option of that name too
	if s.FEC {
		fec = "1"
	}
	return []string{"-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "s16le", "-ar", strconv.Itoa(s.InRate), "-ac", "1", "-i", in,
		"-af", fmt.Sprintf("aresample=osr=48000:resampler=soxr:precision=%d", s.SoxrBits),
		"-c:a", "libopus", "-application", s.App, "-b:a", strconv.Itoa(s.Bitrate),
		"-vbr", vbr, "-compression_level", strconv.Itoa(s.Complexity), "-frame_duration", "20",
		"-fec:a", fec, "-packet_loss", strconv.Itoa(s.LossPct),
		"-f", "rtp", "-payload_type", "111", "rtp://127.0.0.1:" + port + "?pkt_size=1200"}
}

// gstArgs is the same pipeline in GStreamer (its own audioresample).
func gstArgs(s encSettings, in, port string) []string {
	at := map[string]string{"voip": "voice", "audio": "generic", "lowdelay": "restricted-lowdelay"}[s.App]
	br := "constrained-vbr"
	if s.VBR == "off" {
		br = "cbr"
	}
	pipe := fmt.Sprintf("filesrc location=%s ! rawaudioparse use-sink-caps=false format=pcm pcm-format=s16le sample-rate=%d num-channels=1 "+
		"! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "+
		"! opusenc audio-type=%s bitrate=%d complexity=%d frame-size=20 bitrate-type=%s inband-fec=%t packet-loss-percentage=%d dtx=%t "+
		"! rtpopuspay ! udpsink host=127.0.0.1 port=%s sync=false async=false",
		in, s.InRate, at, s.Bitrate, s.Complexity, br, s.FEC, s.LossPct, s.DTX, port)
	return append([]string{"-q"}, strings.Fields(pipe)...)
}

// runChild runs a peer process and returns its CPU time (rusage) and the
// RTP packets it sent.
func runChild(ctx context.Context, name string, args []string) (time.Duration, int, error) {
	sink, err := newUDPSink()
	if err != nil {
		return 0, 0, err
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "PORT", strconv.Itoa(sink.port()))
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	time.Sleep(50 * time.Millisecond) // last datagrams
	n := sink.close()
	if err != nil {
		return 0, n, fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, n, fmt.Errorf("%s: no rusage", name)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), n, nil
}

// measurePeer runs f on the full input repeats times and keeps the median
// CPU; if short is set, it does the same on the short input for the
// marginal cost.
func measurePeer(name, what string, sp *speechPCM, repeats int, short bool, f func(short bool) (time.Duration, int, error)) peerResult {
	r := peerResult{Name: name, What: what, AudioS: round(sp.Seconds, 2)}
	median := func(short bool) (float64, []float64, int, error) {
		var cpus []float64
		n := 0
		for range repeats {
			cpu, k, err := f(short)
			if err != nil {
				return 0, nil, 0, err
			}
			n = k
			cpus = append(cpus, round(cpu.Seconds(), 4))
		}
		all := slices.Clone(cpus)
		slices.Sort(cpus)
		return cpus[len(cpus)/2], all, n, nil
	}
	var err error
	r.CPUS, r.Repeats, r.Packets, err = median(false)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.PerAudioS = round(r.CPUS/sp.Seconds, 5)
	r.Marginal = r.PerAudioS
	if short && sp.ShortSeconds < sp.Seconds {
		sc, _, _, err := median(true)
		if err != nil {
			r.Err = err.Error()
			return r
		}
		r.ShortAudioS, r.ShortCPUS = round(sp.ShortSeconds, 2), sc
		r.Marginal = round((r.CPUS-sc)/(sp.Seconds-sp.ShortSeconds), 5)
	}
	return r
}

// threadCPU is the calling OS thread's CPU time (RUSAGE_THREAD); the caller
// has locked its goroutine to the thread.
func threadCPU() time.Duration {
	const rusageThread = 1
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newEncoder(s encSettings) (*opus.Encoder, error) {
	enc, err := opus.NewEncoder(opusClock, 1, s.opusApp())
	if err != nil {
		return nil, err
	}
	// VBR is left at libopus' default (constrained) unless off.
	for _, e := range []error{enc.SetBitrate(s.Bitrate), enc.SetComplexity(s.Complexity), enc.SetVBR(s.VBR != "off"),
		enc.SetInBandFEC(s.FEC), enc.SetPacketLossPerc(s.LossPct), enc.SetDTX(s.DTX)} {
		if e != nil {
			return nil, e
		}
	}
	return enc, nil
}

// bareOpus encodes 48 kHz PCM in 20 ms frames with libopus (hraban/opus)
// on one locked thread: the floor any Opus sender pays.
func bareOpus(s encSettings, pcm48 []byte) (time.Duration, int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	enc, err := newEncoder(s)
	if err != nil {
		return 0, 0, err
	}
	frame := make([]int16, frameTicks)
	out := make([]byte, 1500)
	start := threadCPU()
	n := 0
	for off := 0; off+2*frameTicks <= len(pcm48); off += 2 * frameTicks {
		for i := range frame {
			frame[i] = int16(binary.LittleEndian.Uint16(pcm48[off+2*i:]))
		}
		if _, err := enc.Encode(frame, out); err != nil {
			return 0, n, err
		}
		n++
	}
	return threadCPU() - start, n, nil
}

// frameSink cuts a byte stream of PCM16LE into 960-sample frames and
// encodes each.
type frameSink struct {
	enc   *opus.Encoder
	buf   []byte
	frame []int16
	out   []byte
	n     int
	err   error
}

func (f *frameSink) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	for len(f.buf) >= 2*frameTicks {
		for i := range f.frame {
			f.frame[i] = int16(binary.LittleEndian.Uint16(f.buf[2*i:]))
		}
		if _, err := f.enc.Encode(f.frame, f.out); err != nil && f.err == nil {
			f.err = err
		}
		f.n++
		f.buf = f.buf[:copy(f.buf, f.buf[2*frameTicks:])]
	}
	return len(p), nil
}

// soxrOpus resamples the TTS-rate PCM with libsoxr (zaf/resample), in 20 ms
// writes as a streaming bridge would, and encodes: the naive Go pipeline.
func soxrOpus(s encSettings, pcm []byte) (time.Duration, int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	enc, err := newEncoder(s)
	if err != nil {
		return 0, 0, err
	}
	sink := &frameSink{enc: enc, frame: make([]int16, frameTicks), out: make([]byte, 1500), buf: make([]byte, 0, 8*frameTicks)}
	start := threadCPU()
	rs, err := resample.New(sink, float64(s.InRate), opusClock, 1, resample.I16, s.SoxrQ)
	if err != nil {
		return 0, 0, err
	}
	chunk := 2 * s.InRate / 50
	for off := 0; off < len(pcm); off += chunk {
		if _, err := rs.Write(pcm[off:min(off+chunk, len(pcm))]); err != nil {
			rs.Close()
			return 0, sink.n, err
		}
	}
	if err := rs.Close(); err != nil {
		return 0, sink.n, err
	}
	return threadCPU() - start, sink.n, sink.err
}

// runPeers measures every peer on the same speech.
func runPeers(ctx context.Context, s encSettings, sp *speechPCM, repeats int) []peerResult {
	in := func(short bool) string {
		if short {
			return sp.ShortPath
		}
		return sp.InPath
	}
	return []peerResult{
		measurePeer("ffmpeg", "ffmpeg "+strings.Join(ffmpegArgs(s, "IN", "PORT")[3:], " "), sp, repeats, true, func(short bool) (time.Duration, int, error) {
			return runChild(ctx, "ffmpeg", ffmpegArgs(s, in(short), "PORT"))
		}),
		measurePeer("gstreamer", "gst-launch-1.0 "+strings.Join(gstArgs(s, "IN", "PORT"), " "), sp, repeats, true, func(short bool) (time.Duration, int, error) {
			return runChild(ctx, "gst-launch-1.0", gstArgs(s, in(short), "PORT"))
		}),
		measurePeer("soxr+libopus (Go, in-process)", "zaf/resample + hraban/opus, 20 ms writes, one thread", sp, repeats, false, func(bool) (time.Duration, int, error) {
			return soxrOpus(s, sp.In)
		}),
		measurePeer("libopus (Go, in-process)", "hraban/opus encode of 48 kHz PCM only, one thread", sp, repeats, false, func(bool) (time.Duration, int, error) {
			return bareOpus(s, sp.At48k)
		}),
	}
}
