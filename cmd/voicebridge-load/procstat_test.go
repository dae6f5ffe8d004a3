package main

import (
	"os"
	"testing"
	"time"
)

func TestSampleCPUSeesThisProcess(t *testing.T) {
	a := sampleCPU()
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); { // burn some CPU
	}
	b := sampleCPU()
	if _, ok := b.procs[os.Getpid()]; !ok || b.machine <= 0 {
		t.Fatalf("this process %v, machine %v", b.procs[os.Getpid()], b.machine)
	}
	// /proc counts in 10 ms ticks: 50 ms of spinning shows.
	if c := cores(a, b, os.Getpid(), false); c <= 0 || c > 4 {
		t.Errorf("cores %v", c)
	}
	if cores(a, b, -1, false) != 0 {
		t.Error("an unknown PID used CPU")
	}
	if rss, err := procRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Errorf("rss %v %v", rss, err)
	}
	if _, err := procRSS(-1); err == nil {
		t.Error("no error for PID -1")
	}
}

func TestBusiest(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := cpuSample{at: t0, procs: map[int]procCPU{1: {"a", 1, 0}, 2: {"b", 0, 0}, 3: {"c", 0, 0}, 4: {"old", 5, 0}}}
	b := cpuSample{at: t0.Add(10 * time.Second), procs: map[int]procCPU{
		1: {"a", 3, 9},    // 2 s in 10 s: 0.2 cores (children not counted)
		2: {"b", 5, 0},    // 0.5
		3: {"c", 0.01, 0}, // below the floor
		4: {"new", 1, 0},  // PID reused: all of it is new, 0.1
		5: {"d", 20, 0},   // skipped
	}}
	got := busiest(a, b, map[int]bool{5: true}, 0.02, 2)
	if len(got) != 2 || got[0] != (busyProc{2, "b", 0.5}) || got[1] != (busyProc{1, "a", 0.2}) {
		t.Errorf("got %+v", got)
	}
	all := busiest(a, b, nil, 0.02, 10)
	if len(all) != 4 || all[3] != (busyProc{4, "new", 0.1}) {
		t.Errorf("all %+v", all)
	}
	if c := cores(a, b, 1, true); c != 1.1 {
		t.Errorf("with children: %v cores, want (2+9)/10", c)
	}
}
