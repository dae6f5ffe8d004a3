package bridge

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"
)

// goroutineCensus counts the goroutines labeled side=side by the function
// each one runs (the bottom frame of its stack): the goroutine profile with
// its labels, which goroutines inherit from the one that starts them.
func goroutineCensus(t *testing.T, side string) map[string]int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	label := fmt.Sprintf("%q:%q", "side", side)
	// Records are separated by blank lines: "N @ addrs", "# labels: {…}",
	// then one "#\taddr\tfunc+off\tfile:line" line per frame.
	for _, rec := range strings.Split(buf.String(), "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		var n int
		if _, err := fmt.Sscanf(lines[0], "%d @", &n); err != nil || !strings.Contains(rec, label) {
			continue
		}
		var frames []string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && strings.HasPrefix(f[1], "0x") {
				fn, _, _ := strings.Cut(f[2], "+0x")
				frames = append(frames, fn)
			}
		}
		if len(frames) == 0 {
			continue
		}
		// A wrapper's entry (wg.Go, a closure of a goroutine starter) is
		// named with the function it runs.
		entry := frames[len(frames)-1]
		for i := len(frames) - 2; i >= 0 && i >= len(frames)-3 && isGoWrapper(entry); i-- {
			entry = frames[i] + " ← " + entry
		}
		if strings.Contains(rec, "voicebridge/tts/ttsserver.") {
			// The embedded TTS server: in the bridge's process only when
			// no -tts-url is given.
			entry = censusTTS + entry
		}
		counts[entry] += n
	}
	return counts
}

// censusTTS prefixes the census entries of the embedded TTS server.
const censusTTS = "(embedded TTS) "

// isGoWrapper reports whether a goroutine's entry function only runs
// another one (so the census names the one above it).
func isGoWrapper(entry string) bool {
	return strings.Contains(entry, "sync.(*WaitGroup).Go") || strings.Contains(entry, "ReadFromContext.func") ||
		strings.Contains(entry, "propagateCancel")
}

// maxGoroutinesPerCall bounds the bridge's goroutines per connected
// one-way WebRTC call with its bot socket, gathering on one address,
// without the embedded TTS server's: 19 measured by TestGoroutinesPerCall
// (README "Deployment"), plus one for a goroutine on its way out.
const maxGoroutinesPerCall = 20

// TestGoroutinesPerCall holds calls connected with a bot each and counts the
// bridge's goroutines per call by the function they run: everything the
// bridge starts (its HTTP handlers, Pion's peer connections, the shared UDP
// port) inherits the label side=bridge, the test's own peers side=peer.
// VOICEBRIDGE_TEST_CENSUS=1 prints the table.
func TestGoroutinesPerCall(t *testing.T) {
	const calls = 8
	var b *testBridge
	pprof.Do(context.Background(), pprof.Labels("side", "bridge"), func(context.Context) {
		b = newBridge(t, Config{})
	})
	// One call first, so that what the bridge starts once (the pacer's
	// workers, the TTS server's loops) is in the baseline.
	settle := func() { time.Sleep(500 * time.Millisecond) } // let handshake goroutines end
	pprof.Do(context.Background(), pprof.Labels("side", "peer"), func(context.Context) {
		c := b.createCall(t, "")
		b.dialBot(t, c.id)
	})
	settle()
	before := goroutineCensus(t, "bridge")
	pprof.Do(context.Background(), pprof.Labels("side", "peer"), func(context.Context) {
		for range calls {
			c := b.createCall(t, "")
			bt := b.dialBot(t, c.id)
			bt.send(t, map[string]any{"type": "text", "text": "نعم", "flush": true})
			bt.expect(t, "speaking")
			bt.expect(t, "done")
		}
	})
	settle()
	after := goroutineCensus(t, "bridge")
	if path := os.Getenv("VOICEBRIDGE_TEST_CENSUS_DUMP"); path != "" { // every stack, with "created by"
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.Lookup("goroutine").WriteTo(f, 2)
		f.Close()
	}
	total, tts := 0, 0
	var table strings.Builder
	for _, fn := range slices.Sorted(maps.Keys(after)) {
		if d := after[fn] - before[fn]; d != 0 {
			if strings.HasPrefix(fn, censusTTS) {
				tts += d
			} else {
				total += d
			}
			fmt.Fprintf(&table, "%6.2f  %s\n", float64(d)/calls, fn)
		}
	}
	perCall := float64(total) / calls
	if os.Getenv("VOICEBRIDGE_TEST_CENSUS") != "" {
		t.Logf("bridge goroutines per call (%d calls):\n%s%6.2f  total without the embedded TTS server (its own: %.2f)",
			calls, table.String(), perCall, float64(tts)/calls)
	}
	if perCall > maxGoroutinesPerCall {
		t.Errorf("%.2f bridge goroutines per call, want ≤ %d:\n%s", perCall, maxGoroutinesPerCall, table.String())
	}
	if resp, body := b.do(t, "GET", "/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
}
