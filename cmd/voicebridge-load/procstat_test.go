package main

import (
	"os"
	"testing"
	"time"
)

func TestSampleCPUSeesThisProcess(t *testing.T) {
	a := sampleCPU(os.Getpid())
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); { // burn some CPU
	}
	b := sampleCPU(os.Getpid())
	if _, ok := b.procs[os.Getpid()]; !ok || b.machine <= 0 {
		t.Fatalf("this process %v, machine %v", b.procs[os.Getpid()], b.machine)
	}
	// /proc counts in 10 ms ticks: 50 ms of spinning shows.
	if c := cores(a, b, os.Getpid()); c <= 0 || c > 4 {
		t.Errorf("cores %v", c)
	}
	if cores(a, b, -1) != 0 {
		t.Error("an unknown PID used CPU")
	}
	if rss, err := procRSS(os.Getpid()); err != nil || rss < 1 { // MiB
		t.Errorf("rss %v %v", rss, err)
	}
	if _, err := procRSS(-1); err == nil {
		t.Error("no error for PID -1")
	}
}
