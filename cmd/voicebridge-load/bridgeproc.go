package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// target is the bridge under load: a process this tool started (PID known,
// so its CPU and memory are read from /proc), or a URL given by the user.
type target struct {
	Base string // http://127.0.0.1:port
	PID  int    // 0 when unknown

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exitErr error         // set before done is closed
	log     *os.File
}

var errNotReady = errors.New("load: process did not become ready")

// buildBridge builds ./cmd/voicebridge of the module at root into bin.
func buildBridge(ctx context.Context, root, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nolibopusfile", "-o", bin, "./cmd/voicebridge")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("load: go build ./cmd/voicebridge: %w", err)
	}
	return nil
}

// freeLoopbackPort asks the kernel for a free TCP port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startBridge runs bin on a free loopback port with extra flags, its output
// going to logPath, and waits for /healthz.
func startBridge(ctx context.Context, bin string, extra []string, logPath string) (*target, error) {
	return startProc(ctx, bin, nil, extra, logPath, waitHealthy)
}

// startTTS runs "bin tts-server" (the embedded TTS alone) on a free loopback
// port and waits until it accepts connections; Base is then its ws:// URL
// of the Faseeh path.
func startTTS(ctx context.Context, bin string, logPath string) (*target, error) {
	t, err := startProc(ctx, bin, []string{"tts-server"}, nil, logPath, waitListening)
	if err != nil {
		return nil, err
	}
	t.Base = "ws" + strings.TrimPrefix(t.Base, "http") + ttsPath
	return t, nil
}

// ttsPath is the Faseeh dialect's path on the embedded TTS server.
const ttsPath = "/api/v1/text-to-speech"

// startProc runs bin with pre, then -listen on a free loopback port, then
// extra, and waits for ready.
func startProc(ctx context.Context, bin string, pre, extra []string, logPath string,
	ready func(ctx context.Context, base string, exited func() (bool, error), limit time.Duration) error) (*target, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append(append(append([]string{}, pre...), "-listen", addr), extra...)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// If this tool dies, so does what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	// No VOICEBRIDGE_* variables from this environment: only our flags.
	cmd.Env = bridgeEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	t := &target{Base: "http://" + addr, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		t.exitErr = cmd.Wait()
		close(t.done)
	}()
	// This tool may run reniced (-nice); what it measures runs at the
	// normal priority. Threads started before the first pass are caught by
	// the second.
	_ = renice(t.PID, 0)
	if err := ready(ctx, t.Base, t.exited, 30*time.Second); err != nil {
		t.stop()
		return nil, fmt.Errorf("%w: %s %s (log: %s): %v", errNotReady, bin, strings.Join(args, " "), logPath, err)
	}
	_ = renice(t.PID, 0)
	return t, nil
}

// exited reports whether the process has exited, and its exit error.

func (t *target) exited() (bool, error) {
	select {
	case <-t.done:
		return true, t.exitErr
	default:
		return false, nil
	}
}

// waitListening waits until base's port accepts TCP connections.
func waitListening(ctx context.Context, base string, exited func() (bool, error), limit time.Duration) error {
	addr := strings.TrimPrefix(base, "http://")
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return ctx.Err()
		}
		if ok, err := exited(); ok {
			return fmt.Errorf("exited: %v", err)
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	return errors.New("timed out")
}

// bridgeEnv drops VOICEBRIDGE_* variables so that only the flags this tool
// passes configure the bridge under test.
func bridgeEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) >= 12 && kv[:12] == "VOICEBRIDGE_" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func waitHealthy(ctx context.Context, base string, exited func() (bool, error), limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return ctx.Err()
		}
		if ok, err := exited(); ok {
			return fmt.Errorf("exited: %v", err)
		}
		resp, err := hc.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("timed out")
}

// stop sends SIGTERM (the bridge shuts down gracefully), and SIGKILL after
// 15 s. It returns how long the shutdown took.
func (t *target) stop() time.Duration {
	if t.cmd == nil {
		return 0
	}
	start := time.Now()
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(15 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
	t.log.Close()
	t.cmd = nil
	return time.Since(start)
}

// scrapeMetrics fetches and parses base/metrics.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load: /metrics: %s", resp.Status)
	}
	return parseProm(resp.Body)
}
