package tts_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/voicebridge/voicebridge/tts"
	"github.com/voicebridge/voicebridge/tts/ttsserver"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectFaseeh, tts.DialectMunsit} {
		t.Run(string(d), func(t *testing.T) {
			rs := startServer(t, ttsserver.ServerConfig{})
			rec := newRecorder()
			c := dial(t, clientConfig(rs, d), rec)
			if err := c.SendText(context.Background(), "مرحبا بك في فصيح ", false, false); err != nil {
				t.Fatal(err)
			}
			if err := c.SendText(context.Background(), "كيف يمكنني مساعدتك اليوم", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitEnd(t)
			pcm, rates, _ := rec.snapshot()
			if len(pcm) < 24000 || len(rates) != 1 || rates[0] != 24000 {
				t.Fatalf("got %d bytes at %v", len(pcm), rates)
			}
		})
	}
}

func TestAuthPlacements(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectFaseeh, tts.DialectMunsit} {
		for _, p := range []tts.AuthPlacement{tts.AuthDefault, tts.AuthHeader, tts.AuthQuery, tts.AuthInitMessage} {
			t.Run(string(d)+"/"+p.String(), func(t *testing.T) {
				rs := startServer(t, ttsserver.ServerConfig{APIKey: "s3cret-key"})
				cfg := clientConfig(rs, d)
				cfg.Auth = p
				cfg.APIKey = "s3cret-key"
				c := dial(t, cfg, newRecorder())
				c.Close()

				cfg.APIKey = "wrong-key"
				_, err := tts.Dial(context.Background(), cfg, newRecorder())
				var e *tts.Error
				if !errors.As(err, &e) || !errors.Is(err, tts.ErrAuth) {
					t.Fatalf("wrong key: got %v, want *tts.Error wrapping tts.ErrAuth", err)
				}
				if d == tts.DialectMunsit && (e.Code != "40101" || e.Message != "Invalid API key") {
					t.Errorf("munsit refusal = %q %q, want 40101 Invalid API key", e.Code, e.Message)
				}
				if strings.Contains(err.Error(), "wrong-key") {
					t.Errorf("error leaks the key: %v", err)
				}
			})
		}
	}
}

func TestClearDropsInterruptedAudio(t *testing.T) {
	for _, d := range []tts.Dialect{tts.DialectFaseeh, tts.DialectMunsit} {
		t.Run(string(d), func(t *testing.T) {
			// isFinal from both dialects, and a quiet period no stall of a
			// loaded machine reaches: every GenerationEnd is from the wire.
			rs := startServer(t, ttsserver.ServerConfig{Pace: ttsserver.PaceRealtime, MunsitIsFinal: true})
			rec := newRecorder()
			cfg := clientConfig(rs, d)
			cfg.QuietPeriod = guard
			c := dial(t, cfg, rec)
			ctx := context.Background()
			if err := c.SendText(ctx, "جملة طويلة جدا للاختبار ولا يجب أن تسمع كلها بعد المسح", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitAudio(t)
			if err := c.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			before, _, _ := rec.snapshot()
			// A marker generation: everything after Clear must be its audio.
			if err := c.SendText(ctx, "نعم", true, false); err != nil {
				t.Fatal(err)
			}
			rec.waitEnd(t)
			after, _, ends := rec.snapshot()
			if ends != 1 {
				t.Fatalf("GenerationEnd called %d times, want 1 (none for the cleared generation)", ends)
			}
			want, err := rs.Synthesize(ctx, "نعم", "ar-najdi-male-2", 24000, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := after[len(before):]; !bytes.Equal(got, want) {
				t.Fatalf("after Clear got %d bytes, want exactly the marker's %d", len(got), len(want))
			}
		})
	}
}
