package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/voicebridge/voicebridge/media"
)

// BenchmarkOnFrame is the per-frame metrics hook every call's pacer runs 50
// times a second: it must not allocate.
func BenchmarkOnFrame(b *testing.B) {
	m := newMetrics()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.onFrame(time.Duration(i%1000)*time.Microsecond, i%100 == 0)
	}
}

func TestOnFrameAllocs(t *testing.T) {
	m := newMetrics()
	if n := testing.AllocsPerRun(1000, func() { m.onFrame(300*time.Microsecond, true) }); n != 0 {
		t.Errorf("onFrame allocates %v times per frame", n)
	}
}

// scrape reads one unlabelled series from the registry.
func scrape(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		mt := mf.GetMetric()[0]
		if c := mt.GetCounter(); c != nil {
			return c.GetValue()
		}
		return mt.GetGauge().GetValue()
	}
	t.Fatalf("%s not exported", name)
	return 0
}

// TestStreamCountersExported: the media streams' counters reach /metrics,
// summed over live streams, and survive the streams' close.
func TestStreamCountersExported(t *testing.T) {
	m := newMetrics()
	newStream := func() *media.Stream {
		var st *media.Stream
		st, err := media.NewStream(media.StreamConfig{
			Writer:  media.PacketWriterFunc(func(*rtp.Packet) error { return nil }),
			OnClose: func(final media.Stats) { m.streams.streamClosed(st, final) },
		})
		if err != nil {
			t.Fatal(err)
		}
		m.streams.add(st)
		return st
	}
	a, b := newStream(), newStream()
	a.Clear()
	a.Clear()
	b.Clear()
	if err := b.Write(context.Background(), make([]byte, 4800), 24000); err != nil { // 100 ms
		t.Fatal(err)
	}
	if got := scrape(t, m, "voicebridge_clears_total"); got != 3 {
		t.Errorf("clears %v, want 3", got)
	}
	if got := scrape(t, m, "voicebridge_queued_frames"); got < 2 {
		t.Errorf("queued frames %v, want the ~3 frames of b", got)
	}
	_ = a.Close()
	_ = a.Close()
	if got := scrape(t, m, "voicebridge_clears_total"); got != 3 {
		t.Errorf("clears %v after a closed, want 3", got)
	}
	_ = b.Close()
	if got := scrape(t, m, "voicebridge_queued_frames"); got != 0 {
		t.Errorf("queued frames %v with no stream, want 0", got)
	}
	for _, name := range []string{"voicebridge_underrun_frames_total", "voicebridge_skipped_frames_total",
		"voicebridge_encode_errors_total", "voicebridge_talkspurts_total", "voicebridge_drains_total"} {
		if got := scrape(t, m, name); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	if n := len(m.streams.live); n != 0 {
		t.Errorf("%d streams still held after Close", n)
	}
}
