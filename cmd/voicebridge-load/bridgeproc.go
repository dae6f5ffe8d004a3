package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// target is a process this tool started and measures (its CPU and memory from /proc).
type target struct {
	Base string // http://127.0.0.1:port (the TTS: its ws:// URL)
	PID  int

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exitErr error         // set before done is closed
	log     *os.File
}

// buildBridge builds ./cmd/voicebridge of the module at root into bin.
func buildBridge(ctx context.Context, root, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nolibopusfile", "-o", bin, "./cmd/voicebridge")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("load: go build ./cmd/voicebridge: %w", err)
	}
	return nil
}

// startTargets starts what a run measures: the embedded TTS in its own
// process ("voicebridge tts-server", so that its synthesis is not counted
// as the bridge's CPU), then the bridge using it, with extra flags. Logs go
// to dir/name-tts.log and dir/name.log. Stop both when done.
func startTargets(ctx context.Context, bin string, extra []string, dir, name string) (bridge, tts *target, err error) {
	const ttsPath = "/api/v1/text-to-speech" // the Faseeh dialect; a plain GET gets 426 Upgrade Required
	if tts, err = startProc(ctx, bin, []string{"tts-server"}, filepath.Join(dir, name+"-tts.log"), ttsPath, http.StatusUpgradeRequired); err != nil {
		return nil, nil, err
	}
	tts.Base = "ws" + strings.TrimPrefix(tts.Base, "http") + ttsPath
	// -udp-ports: our receivers share one socket, which a shared -udp-port cannot tell apart.
	if bridge, err = startProc(ctx, bin, append([]string{"-tts-url", tts.Base, "-udp-ports", "40000-59999"}, extra...), filepath.Join(dir, name+".log"), "/healthz", http.StatusOK); err != nil {
		tts.stop()
		return nil, nil, err
	}
	return bridge, tts, nil
}

// startProc runs bin with args and -listen on a free loopback port, and
// waits until a GET of path answers status.
func startProc(ctx context.Context, bin string, args []string, logPath, path string, status int) (*target, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args = append(slices.Clone(args), "-listen", addr)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // if this tool dies, so does what it started
	// No VOICEBRIDGE_* variables from this environment: only our flags.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "VOICEBRIDGE_") })
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	t := &target{Base: "http://" + addr, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		t.exitErr = cmd.Wait()
		close(t.done)
	}()
	// This tool runs reniced; what it measures at the normal priority.
	// Threads started before the first pass are caught by the second.
	_ = renice(t.PID, 0)
	if err := t.waitReady(ctx, path, status); err != nil {
		t.stop()
		return nil, fmt.Errorf("load: %s %s did not become ready (log: %s): %v", bin, strings.Join(args, " "), logPath, err)
	}
	_ = renice(t.PID, 0)
	return t, nil
}

// waitReady polls t.Base+path for up to 30 s until it answers status.
func (t *target) waitReady(ctx context.Context, path string, status int) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return ctx.Err()
		}
		select {
		case <-t.done:
			return fmt.Errorf("exited: %v", t.exitErr)
		default:
		}
		if _, _, err := request(ctx, hc, http.MethodGet, t.Base+path, "", nil, status); err == nil {
			return nil
		}
	}
	return errors.New("timed out")
}

// stop sends SIGTERM (the bridge shuts down gracefully), and SIGKILL after
// 15 s. It returns how long the shutdown took. Stopping twice is harmless.
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
