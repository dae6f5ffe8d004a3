package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times; 100 on every Linux
// architecture Go supports for this tool.
const clockTick = 100

var errProcFormat = errors.New("load: unexpected /proc format")

// procCPU is a process's CPU time so far: its own (utime+stime) and that of
// its waited-for children (cutime+cstime).
type procCPU struct {
	Self, Children time.Duration
}

// parseProcStat reads utime, stime, cutime and cstime (fields 14–17 of
// proc(5)) from the contents of /proc/PID/stat. The command name (field 2)
// may hold spaces and parentheses, so fields are counted after its last ')'.
func parseProcStat(b []byte) (procCPU, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procCPU{}, errProcFormat
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field k is f[k-3].
	if len(f) < 15 {
		return procCPU{}, errProcFormat
	}
	var v [4]int64
	for j := range v {
		n, err := strconv.ParseInt(f[11+j], 10, 64)
		if err != nil {
			return procCPU{}, fmt.Errorf("%w: %v", errProcFormat, err)
		}
		v[j] = n
	}
	tick := time.Second / clockTick
	return procCPU{Self: time.Duration(v[0]+v[1]) * tick, Children: time.Duration(v[2]+v[3]) * tick}, nil
}

func readProcCPU(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, err
	}
	return parseProcStat(b)
}

// readProcRSS returns VmRSS of /proc/PID/status in bytes.
func readProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb * 1024, nil
				}
			}
		}
	}
	return 0, errProcFormat
}

// selfCPU is this process's user+system CPU time (getrusage RUSAGE_SELF).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the whole machine's busy and total CPU time from /proc/stat.
type machineCPU struct {
	Busy, Total time.Duration
}

// parseMachineStat reads the aggregate "cpu" line of /proc/stat. Busy is
// everything but idle and iowait.
func parseMachineStat(b []byte) (machineCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return machineCPU{}, errProcFormat
	}
	var total, idle int64
	for i, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("%w: %v", errProcFormat, err)
		}
		if i >= 8 { // guest, guest_nice are already in user, nice
			break
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	tick := time.Second / clockTick
	return machineCPU{Busy: time.Duration(total-idle) * tick, Total: time.Duration(total) * tick}, nil
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	return parseMachineStat(b)
}

// procSnapshot is every process's CPU so far, by PID, with its name.
type procSnapshot map[int]procEntry

type procEntry struct {
	Comm string
	CPU  time.Duration // own, not children's
}

// readAllProcs reads /proc/*/stat. Processes that vanish meanwhile are
// skipped.
func readAllProcs() procSnapshot {
	s := procSnapshot{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return s
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		c, err := parseProcStat(b)
		if err != nil {
			continue
		}
		comm := ""
		if i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')'); i >= 0 && j > i {
			comm = string(b[i+1 : j])
		}
		s[pid] = procEntry{Comm: comm, CPU: c.Self}
	}
	return s
}

// busyProc is a process that used CPU during a window.
type busyProc struct {
	PID   int     `json:"pid"`
	Comm  string  `json:"comm"`
	Cores float64 `json:"cores"`
}

// busiest returns the processes of after that used at least minCores over
// wall since before, except those in skip, busiest first, at most n.
func busiest(before, after procSnapshot, wall time.Duration, skip map[int]bool, minCores float64, n int) []busyProc {
	var out []busyProc
	for pid, a := range after {
		if skip[pid] {
			continue
		}
		b, ok := before[pid]
		if !ok || b.Comm != a.Comm {
			b = procEntry{} // started during the window
		}
		cores := (a.CPU - b.CPU).Seconds() / wall.Seconds()
		if cores >= minCores {
			out = append(out, busyProc{PID: pid, Comm: a.Comm, Cores: round(cores, 3)})
		}
	}
	slices.SortFunc(out, func(x, y busyProc) int { return cmp.Compare(y.Cores, x.Cores) })
	return out[:min(n, len(out))]
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
