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
	"syscall"
	"time"
)

// target is the bridge under load: a process this tool started (PID known,
// so its CPU and memory are read from /proc), or a URL given by the user.
type target struct {
	Base string // http://127.0.0.1:port
	PID  int    // 0 when unknown

	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

var errNotReady = errors.New("load: bridge did not become healthy")

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
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"-listen", addr}, extra...)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Only loopback and a clean environment for the bridge's own variables.
	cmd.Env = bridgeEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	t := &target{Base: "http://" + addr, PID: cmd.Process.Pid, cmd: cmd, done: make(chan error, 1), log: lf}
	go func() { t.done <- cmd.Wait() }()
	if err := waitHealthy(ctx, t.Base, t.done, 30*time.Second); err != nil {
		t.stop()
		return nil, fmt.Errorf("%w (log: %s): %v", errNotReady, logPath, err)
	}
	return t, nil
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

func waitHealthy(ctx context.Context, base string, exited <-chan error, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
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
