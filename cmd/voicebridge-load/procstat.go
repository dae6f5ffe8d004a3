package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// cpuSample is the CPU counters of the machine and of its processes at one
// instant, read from /proc (procfs). Seconds of CPU throughout.
type cpuSample struct {
	at      time.Time
	machine float64         // busy: everything but idle and iowait
	procs   map[int]procCPU // every process, by PID
}

// procCPU is one process's CPU so far: its own and that of its waited-for
// children (the TTS server's espeak-ng).
type procCPU struct {
	comm           string
	self, children float64
}

// sampleCPU reads every process and the machine. Processes that vanish
// meanwhile are skipped.
func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now(), procs: map[int]procCPU{}}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return s
	}
	if st, err := fs.Stat(); err == nil {
		c := st.CPUTotal // guest time is already in user and nice
		s.machine = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	}
	procs, _ := fs.AllProcs()
	for _, p := range procs {
		if st, err := p.Stat(); err == nil {
			const userHZ = 100 // the unit of /proc's CPU times on Linux
			s.procs[p.PID] = procCPU{comm: st.Comm, self: st.CPUTime(), children: float64(st.CUTime+st.CSTime) / userHZ}
		}
	}
	return s
}

// cores is the CPU pid used between a and b, with its children's if
// children is set, in cores; 0 if pid is unknown in either.
func cores(a, b cpuSample, pid int, children bool) float64 {
	x, ok1 := a.procs[pid]
	y, ok2 := b.procs[pid]
	wall := b.at.Sub(a.at).Seconds()
	if !ok1 || !ok2 || wall <= 0 {
		return 0
	}
	d := y.self - x.self
	if children {
		d += y.children - x.children
	}
	return d / wall
}

// busyProc is a process that used CPU during a window.
type busyProc struct {
	PID   int     `json:"pid"`
	Comm  string  `json:"comm"`
	Cores float64 `json:"cores"`
}

// busiest returns the processes of b that used at least minCores since a,
// except those in skip, busiest first, at most n. A PID whose name changed
// was reused: all of its CPU is new.
func busiest(a, b cpuSample, skip map[int]bool, minCores float64, n int) []busyProc {
	wall := b.at.Sub(a.at).Seconds()
	var out []busyProc
	for pid, y := range b.procs {
		x := a.procs[pid]
		if skip[pid] || wall <= 0 {
			continue
		}
		if x.comm != y.comm {
			x = procCPU{}
		}
		if c := (y.self - x.self) / wall; c >= minCores {
			out = append(out, busyProc{PID: pid, Comm: y.comm, Cores: round(c, 3)})
		}
	}
	slices.SortFunc(out, func(x, y busyProc) int { return cmp.Compare(y.Cores, x.Cores) })
	return out[:min(n, len(out))]
}

// procRSS is the resident memory of pid in bytes.
func procRSS(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return float64(st.ResidentMemory()), nil
}

// renice sets the nice value of every thread of process pid (0: this
// process). Linux applies nice per thread, and a new thread inherits its
// creator's, so this walks /proc/PID/task.
func renice(pid, nice int) error {
	dir := "/proc/self/task"
	if pid > 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var first error
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && first == nil {
			first = err
		}
	}
	return first
}
