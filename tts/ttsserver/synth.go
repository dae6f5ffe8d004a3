package ttsserver

import (
	"bytes"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// espeakRate is the rate of espeak-ng's WAV output.
const espeakRate = 22050

// wavHeaderLen: espeak-ng --stdout writes a 44-byte RIFF header whose size
// fields are bogus (0x7ffff...) because it streams; the PCM follows.
const wavHeaderLen = 44

type synthKey struct {
	text, voice string
	rate        int
	speed       float64
}

// synthCall is one synthesis in progress, shared by everyone who asks for
// the same key (refcounted: it is cancelled, and espeak-ng killed, when
// the last of them gives up).
type synthCall struct {
	done    chan struct{}
	pcm     []byte
	err     error
	waiters int // guarded by synth.mu
	cancel  context.CancelFunc
}

// synth turns text into PCM16LE at a requested rate with espeak-ng (or the
// fallback voice), sharing work: a bounded LRU of results by (text, voice,
// rate, speed), one synthesis per key at a time, and at most maxProcs
// espeak-ng processes at once. A load test of hundreds of calls speaking
// the same prompts costs a handful of processes.
type synth struct {
	path     string // resolved espeak-ng, or "" for the fallback
	log      *slog.Logger
	procs    chan struct{} // semaphore of espeak-ng processes
	maxBytes int64
	ctx      context.Context // cancelled by close
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu       sync.Mutex
	lru      *list.List                 // guarded by mu; of *cacheEntry, most recent first
	entries  map[synthKey]*list.Element // guarded by mu
	size     int64                      // guarded by mu
	inflight map[synthKey]*synthCall    // guarded by mu
	warnOnce sync.Once
	runs     int // guarded by mu: syntheses started (for tests)
}

type cacheEntry struct {
	key synthKey
	pcm []byte
}

func newSynth(path string, maxProcs int, maxBytes int64, log *slog.Logger) *synth {
	s := &synth{
		log:      log,
		procs:    make(chan struct{}, maxProcs),
		maxBytes: maxBytes,
		lru:      list.New(),
		entries:  map[synthKey]*list.Element{},
		inflight: map[synthKey]*synthCall{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if p, err := exec.LookPath(path); err == nil {
		s.path = p
	}
	return s
}

// usingFallback reports whether espeak-ng was not found.
func (s *synth) usingFallback() bool { return s.path == "" }

func (s *synth) close() {
	s.cancel()
	s.wg.Wait()
}

// pcm returns text spoken by voice at rate as PCM16LE. The result is shared
// (cached): callers must not modify it.
func (s *synth) pcm(ctx context.Context, text, voice string, rate int, speed float64) ([]byte, error) {
	key := synthKey{text: text, voice: voice, rate: rate, speed: speed}
	s.mu.Lock()
	if el, ok := s.entries[key]; ok {
		s.lru.MoveToFront(el)
		pcm := el.Value.(*cacheEntry).pcm
		s.mu.Unlock()
		return pcm, nil
	}
	call, ok := s.inflight[key]
	if !ok {
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return nil, errors.New("tts: server closed")
		}
		cctx, cancel := context.WithCancel(s.ctx)
		call = &synthCall{done: make(chan struct{}), cancel: cancel}
		s.inflight[key] = call
		s.runs++
		s.wg.Add(1)
		go s.run(cctx, key, call)
	}
	call.waiters++
	s.mu.Unlock()
	select {
	case <-call.done:
		return call.pcm, call.err
	case <-ctx.Done():
		s.mu.Lock()
		call.waiters--
		if call.waiters == 0 {
			call.cancel() // kills espeak-ng if nobody else wants it
			if s.inflight[key] == call {
				delete(s.inflight, key) // the next asker starts afresh
			}
		}
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (s *synth) run(ctx context.Context, key synthKey, call *synthCall) {
	defer s.wg.Done()
	defer call.cancel()
	pcm, err := s.synthesize(ctx, key)
	s.mu.Lock()
	if s.inflight[key] == call {
		delete(s.inflight, key)
	}
	if err == nil {
		s.put(key, pcm)
	}
	s.mu.Unlock()
	call.pcm, call.err = pcm, err
	close(call.done)
}

// put adds to the LRU and evicts beyond maxBytes. Called with mu held.
func (s *synth) put(key synthKey, pcm []byte) {
	if int64(len(pcm)) > s.maxBytes {
		return
	}
	s.entries[key] = s.lru.PushFront(&cacheEntry{key: key, pcm: pcm})
	s.size += int64(len(pcm))
	for s.size > s.maxBytes {
		el := s.lru.Back()
		e := el.Value.(*cacheEntry)
		s.lru.Remove(el)
		delete(s.entries, e.key)
		s.size -= int64(len(e.pcm))
	}
}

func (s *synth) synthesize(ctx context.Context, key synthKey) ([]byte, error) {
	var samples []int16
	if key.voice == TestTonesVoice {
		samples = toneVoice(key.text, key.rate, key.speed)
	} else if s.path == "" {
		s.warnOnce.Do(func() {
			s.log.Warn("tts: espeak-ng not found; the embedded TTS speaks a synthetic voice-like signal instead of speech (install espeak-ng: make deps)")
		})
		samples = fallbackVoice(key.text, key.voice, key.rate, key.speed)
	} else {
		raw, err := s.espeak(ctx, key)
		if err != nil {
			return nil, err
		}
		samples = resamplePCM(raw, espeakRate, key.rate)
	}
	out := make([]byte, 2*len(samples))
	for i, v := range samples {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out, nil
}

// espeakVoice maps a voice_id onto an espeak-ng voice: ar-* is Arabic,
// anything else English; a voice id naming "female" gets a female variant.
func espeakVoice(voiceID string) string {
	v := strings.ToLower(voiceID)
	lang := "en"
	if v == "ar" || strings.HasPrefix(v, "ar-") || strings.HasPrefix(v, "ar_") {
		lang = "ar"
	}
	if strings.Contains(v, "female") {
		lang += "+f3"
	}
	return lang
}

// espeak runs espeak-ng in streaming mode (text on stdin, WAV on stdout),
// skips the header and returns the 22050 Hz samples. ctx kills the process;
// it is always waited for (no orphans).
func (s *synth) espeak(ctx context.Context, key synthKey) ([]int16, error) {
	select {
	case s.procs <- struct{}{}:
		defer func() { <-s.procs }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	wpm := 175.0
	if key.speed > 0 {
		wpm *= key.speed
	}
	cmd := exec.CommandContext(ctx, s.path, "--stdout", "-b", "1", "-v", espeakVoice(key.voice), "-s", strconv.Itoa(int(wpm)))
	cmd.Stdin = strings.NewReader(key.text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tts: start espeak-ng: %w", err)
	}
	data, rerr := io.ReadAll(stdout)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if rerr != nil || werr != nil {
		return nil, fmt.Errorf("tts: espeak-ng: %v %v: %s", rerr, werr, truncate(stderr.String(), 200))
	}
	if len(data) < wavHeaderLen {
		return nil, nil // nothing to say
	}
	data = data[wavHeaderLen:]
	samples := make([]int16, len(data)/2)
	for i := range samples {
		samples[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return samples, nil
}
