package main

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// cpuSample is the CPU seconds of the machine (busy: all but idle and
// iowait) and of some processes at one instant, from /proc. A process's
// includes its waited-for children's (the TTS server's espeak-ng).
type cpuSample struct {
	at      time.Time
	machine float64
	procs   map[int]float64
}

// sampleCPU reads the machine and the processes pids (skipping those that
// are gone).
func sampleCPU(pids ...int) cpuSample {
	s := cpuSample{at: time.Now(), procs: map[int]float64{}}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return s
	}
	if st, err := fs.Stat(); err == nil {
		c := st.CPUTotal // guest time is already in user and nice
		s.machine = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	}
	for _, pid := range pids {
		if p, err := fs.Proc(pid); err == nil {
			if st, err := p.Stat(); err == nil {
				const userHZ = 100 // the unit of /proc's CPU times on Linux
				s.procs[pid] = st.CPUTime() + float64(st.CUTime+st.CSTime)/userHZ
			}
		}
	}
	return s
}

// cores is the CPU pid used between a and b, in cores; 0 if pid is unknown
// in either.
func cores(a, b cpuSample, pid int) float64 {
	x, ok1 := a.procs[pid]
	y, ok2 := b.procs[pid]
	wall := b.at.Sub(a.at).Seconds()
	if !ok1 || !ok2 || wall <= 0 {
		return 0
	}
	return (y - x) / wall
}

// procRSS is the resident memory of pid in MiB.
func procRSS(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	return float64(st.ResidentMemory()) / (1 << 20), err
}

// renice sets the nice value of every thread of process pid (0: this one):
// Linux applies nice per thread, and a new thread inherits its creator's.
func renice(pid, nice int) (first error) {
	dir := "/proc/self/task"
	if pid > 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	ents, err := os.ReadDir(dir)
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			first = cmp.Or(first, syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice))
		}
	}
	return cmp.Or(err, first)
}
