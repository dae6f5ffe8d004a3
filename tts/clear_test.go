package tts_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
)

// runs is how many times each timing-sensitive case runs: a defect that
// shows up one run in four escapes 12 runs with probability (3/4)^12 < 4%.
const runs = 12

// longTones is a generation of 3 s of test tones (15 words).
const longTones = "300 320 340 360 380 400 420 440 460 480 500 520 540 560 580"

// TestClearAgainstLaggingService: the service keeps streaming the cleared
// generation for 150 ms after it reads the clear, at 1.25× real time in
// 60 ms chunks, and answers pings from its read loop, as a hosted service
// does. After Clear returns, everything delivered is the marker generation
// sent after it, byte for byte, and only the marker gets a GenerationEnd.
// Munsit is run with and without isFinal.
func TestClearAgainstLaggingService(t *testing.T) {
	cases := []struct {
		name    string
		d       tts.Dialect
		isFinal bool
	}{
		{"faseeh", tts.DialectFaseeh, true},
		{"munsit", tts.DialectMunsit, true},
		{"munsit-no-isFinal", tts.DialectMunsit, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := startServer(t, ttsserver.ServerConfig{
				Pace:          1.25,
				ChunkDuration: 60 * time.Millisecond,
				MunsitIsFinal: tc.isFinal,
				Faults:        ttsserver.Faults{ClearLag: 150 * time.Millisecond, ReaderPongs: true},
			})
			ctx := context.Background()
			for i := range runs {
				rec := newRecorder()
				cfg := clientConfig(rs, tc.d)
				cfg.VoiceID = ttsserver.TestTonesVoice
				if tc.isFinal {
					cfg.QuietPeriod = guard
				}
				c := dial(t, cfg, rec)
				if err := c.SendText(ctx, longTones, true, false); err != nil {
					t.Fatal(err)
				}
				rec.waitAudio(t)
				if err := c.Clear(ctx); err != nil {
					t.Fatal(err)
				}
				before, _, _ := rec.snapshot()
				marker := fmt.Sprint(1000 + 100*i)
				if err := c.SendText(ctx, marker, true, false); err != nil {
					t.Fatal(err)
				}
				rec.waitEnd(t)
				after, _, ends := rec.snapshot()
				want, err := rs.Synthesize(ctx, marker, ttsserver.TestTonesVoice, 24000, 1)
				if err != nil {
					t.Fatal(err)
				}
				if got := after[len(before):]; !bytes.Equal(got, want) {
					t.Fatalf("run %d: after Clear got %d bytes, want exactly the marker's %d", i, len(got), len(want))
				}
				if ends != 1 {
					t.Fatalf("run %d: %d GenerationEnds, want 1 (none for the cleared generation)", i, ends)
				}
				c.Close()
			}
		})
	}
}

// TestClearCost: what a clear costs the service. With a generation in
// flight: one new connection (the old one gets munsit's clear, then
// closeConnection). With nothing in flight: none.
func TestClearCost(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectFaseeh, tts.DialectMunsit} {
		t.Run(string(d), func(t *testing.T) {
			var log textLog
			var clears int
			rs := startServer(t, ttsserver.ServerConfig{MunsitIsFinal: true, OnMessage: func(d tts.Dialect, msg []byte) {
				log.onMessage(d, msg)
				if string(msg) == `{"type":"clear"}` {
					log.mu.Lock()
					clears++
					log.mu.Unlock()
				}
			}})
			rec := newRecorder()
			cfg := clientConfig(rs, d)
			cfg.VoiceID = ttsserver.TestTonesVoice
			cfg.QuietPeriod = guard
			c := dial(t, cfg, rec)
			ctx := context.Background()
			if err := c.SendText(ctx, "500", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitEnd(t)
			if err := c.Clear(ctx); err != nil { // idle: nothing in flight
				t.Fatal(err)
			}
			if n := rs.Accepted(); n != 1 {
				t.Fatalf("idle clear: %d connections accepted, want 1", n)
			}
			if err := c.SendText(ctx, longTones, true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitAudio(t)
			if err := c.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.SendText(ctx, "600", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitEnd(t)
			if n := rs.Accepted(); n != 2 {
				t.Fatalf("clear in flight: %d connections accepted, want 2", n)
			}
			// The retired connection closes gracefully: the service reads
			// everything sent on it, then the close.
			waitConnections(t, rs, 1)
			log.mu.Lock()
			defer log.mu.Unlock()
			wantClears := map[tts.Dialect]int{tts.DialectFaseeh: 0, tts.DialectMunsit: 2}[d]
			if clears != wantClears {
				t.Fatalf("%d clear messages, want %d", clears, wantClears)
			}
		})
	}
}

// TestGenerationEndPerTrigger: munsit without isFinal, two generations
// triggered back to back: the quiet period ends both, with one
// GenerationEnd each.
func TestGenerationEndPerTrigger(t *testing.T) {
	rs := startServer(t, ttsserver.ServerConfig{})
	rec := newRecorder()
	cfg := clientConfig(rs, tts.DialectMunsit)
	cfg.VoiceID = ttsserver.TestTonesVoice
	cfg.QuietPeriod = 100 * time.Millisecond
	c := dial(t, cfg, rec)
	ctx := context.Background()
	for _, s := range []string{"500 600", "700 800", "900"} {
		if err := c.SendText(ctx, s, true, false); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		rec.waitEnd(t)
	}
	// A fourth would be a defect; give the client a quiet period to make it.
	time.Sleep(3 * cfg.QuietPeriod)
	if pcm, _, ends := rec.snapshot(); ends != 3 || len(pcm) != 5*2*ttsserver.ToneSamples(24000, 1) {
		t.Fatalf("%d GenerationEnds and %d bytes, want 3 and all five words", ends, len(pcm))
	}
}

// waitConnections waits until rs has n open connections.
func waitConnections(t *testing.T, rs *ttsserver.RunningServer, n int) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for rs.Connections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", rs.Connections(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
