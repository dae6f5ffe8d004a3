package bridge

import (
	"testing"
	"time"
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
