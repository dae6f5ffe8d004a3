package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestSequentialCalls creates, connects and hangs up 200 calls one after the
// other: nothing may be left behind (goroutines, calls, TTS connections).
func TestSequentialCalls(t *testing.T) {
	const cycles = 200
	b := newBridge(t, Config{})
	baseline := goleak.IgnoreCurrent()
	start := time.Now()
	for i := range cycles {
		off := newOfferer(t, 64, nil)
		resp, body := b.do(t, "POST", "/v1/calls", "application/sdp", []byte(off.offer(t)))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("cycle %d: create: %d %s", i, resp.StatusCode, body)
		}
		off.accept(t, string(body))
		waitFor(t, off.connected, "connect")
		if resp, body := b.do(t, "DELETE", resp.Header.Get("Location"), "", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("cycle %d: delete: %d %s", i, resp.StatusCode, body)
		}
		off.close()
	}
	t.Logf("%d create/connect/delete cycles in %v (%v per call)", cycles, time.Since(start).Round(time.Millisecond),
		(time.Since(start) / cycles).Round(time.Millisecond))
	checkNothingLeft(t, b, cycles, baseline)
}

// checkNothingLeft checks that no call, TTS connection or goroutine
// started after baseline survives, and that the metrics agree.
func checkNothingLeft(t *testing.T, b *testBridge, total int, baseline goleak.Option) {
	t.Helper()
	b.srv.mu.Lock()
	calls, pending := len(b.srv.calls), b.srv.pending
	b.srv.mu.Unlock()
	if calls != 0 || pending != 0 {
		t.Errorf("%d calls and %d reservations left", calls, pending)
	}
	waitTTSConnections(t, b, 0)
	_, body := b.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{"voicebridge_calls_active 0", fmt.Sprintf("voicebridge_calls_total %d", total)} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(string(body), "voicebridge_calls"))
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if err := goleak.Find(baseline); err != nil {
		t.Errorf("goroutines left behind: %v", err)
	}
}

// TestConcurrentCalls runs 50 calls at once, each with a bot socket that
// makes it speak, then hangs them all up.
func TestConcurrentCalls(t *testing.T) {
	const n = 50
	b := newBridge(t, Config{})
	baseline := goleak.IgnoreCurrent()
	offs := make([]*offerer, n)
	offers := make([]string, n)
	for i := range offs {
		offs[i] = newOfferer(t, 1<<12, nil)
		offers[i] = offs[i].offer(t)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	ids := make([]string, n)
	errs := make([]error, n)
	var connected, spoke sync.WaitGroup
	connected.Add(n)
	spoke.Add(n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = runConcurrentCall(ctx, b, offs[i], offers[i], &ids[i], &connected, &spoke)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	t.Logf("%d concurrent calls created, spoken and hung up in %v (%d speaking/done events after the first done)",
		n, time.Since(start).Round(time.Millisecond), extraEvents.Load())
	for i, o := range offs {
		if len(o.packets) == 0 {
			t.Errorf("call %d: no RTP received", i)
		}
		o.close()
	}
	checkNothingLeft(t, b, n, baseline)
}

// extraEvents counts speaking/done events after a call's first done.
var extraEvents atomic.Int64

// runConcurrentCall is one call of TestConcurrentCalls. It reports failures
// as errors (it runs on its own goroutine). All calls are connected before
// any speaks, and all have spoken before any hangs up, so 50 run at once.
func runConcurrentCall(ctx context.Context, b *testBridge, off *offerer, offer string, id *string, connected, spoke *sync.WaitGroup) (err error) {
	connectedDone, spokeDone := false, false
	defer func() {
		if !connectedDone {
			connected.Done()
		}
		if !spokeDone {
			spoke.Done()
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", b.url+"/v1/calls", strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create: %d %s", resp.StatusCode, answer)
	}
	*id = strings.TrimPrefix(resp.Header.Get("Location"), "/v1/calls/")
	if err := off.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return err
	}
	select {
	case <-off.connected:
	case <-ctx.Done():
		return errors.New("not connected")
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/v1/calls/"+*id+"/ws", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	connected.Done()
	connectedDone = true
	connected.Wait()

	if err := conn.WriteJSON(map[string]any{"type": "text", "text": "مرحبا بك", "flush": true}); err != nil {
		return err
	}
	var got []string
	for len(got) < 2 {
		_ = conn.SetReadDeadline(time.Now().Add(2 * waitTimeout))
		var ev map[string]any
		if err := conn.ReadJSON(&ev); err != nil {
			return fmt.Errorf("after events %v: %w", got, err)
		}
		got = append(got, fmt.Sprint(ev["type"]))
	}
	if got[0] != "speaking" || got[1] != "done" {
		return fmt.Errorf("events %v, want speaking, done", got)
	}
	spoke.Done()
	spokeDone = true
	spoke.Wait()

	req, _ = http.NewRequestWithContext(ctx, "DELETE", b.url+"/v1/calls/"+*id, bytes.NewReader(nil))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("delete: %d", resp.StatusCode)
	}
	// Then closed. Under this load (50 syntheses on a small machine with
	// -race) the embedded munsit TTS can stall longer than the client's
	// quiet period mid-sentence: the end of the generation is inferred
	// early (munsit sends no isFinal), and the rest of the sentence is a
	// new speaking/done pair. Those may come before closed.
	for {
		var ev map[string]any
		if err := conn.ReadJSON(&ev); err != nil {
			return fmt.Errorf("after delete: %w", err)
		}
		switch ev["type"] {
		case "closed":
			return nil
		case "speaking", "done":
			extraEvents.Add(1)
		default:
			return fmt.Errorf("after delete: %v", ev)
		}
	}
}
