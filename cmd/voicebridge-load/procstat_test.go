package main

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and a ')' inside, as proc(5) allows.
	line := "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 12 0 100 0 0\n"
	c, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if c.Self != 3*time.Second || c.Children != 100*time.Millisecond {
		t.Errorf("got %+v", c)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 2 3 4 5"} {
		if _, err := parseProcStat([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	c, err := readProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if c.Self < 0 {
		t.Errorf("cpu %v", c)
	}
	rss, err := readProcRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("rss %d %v", rss, err)
	}
}

func TestParseMachineStat(t *testing.T) {
	s := "cpu  100 5 50 1000 20 1 2 3 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
	m, err := parseMachineStat([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	// total = user..steal = 100+5+50+1000+20+1+2+3 = 1181 ticks; idle+iowait 1020.
	if m.Total != 11810*time.Millisecond || m.Busy != 1610*time.Millisecond {
		t.Errorf("got %+v", m)
	}
	if _, err := parseMachineStat([]byte("intr 1 2 3\n")); !errors.Is(err, errProcFormat) {
		t.Errorf("bad first line: %v", err)
	}
}

func TestBusiest(t *testing.T) {
	before := procSnapshot{1: {"a", time.Second}, 2: {"b", 0}, 3: {"c", 0}, 4: {"old", 5 * time.Second}}
	after := procSnapshot{
		1: {"a", 3 * time.Second},       // 2 s in 10 s: 0.2 cores
		2: {"b", 5 * time.Second},       // 0.5
		3: {"c", 10 * time.Millisecond}, // below the floor
		4: {"new", time.Second},         // PID reused: all of it is new, 0.1
		5: {"d", 20 * time.Second},      // skipped
	}
	got := busiest(before, after, 10*time.Second, map[int]bool{5: true}, 0.02, 2)
	if len(got) != 2 || got[0] != (busyProc{2, "b", 0.5}) || got[1] != (busyProc{1, "a", 0.2}) {
		t.Errorf("got %+v", got)
	}
	all := busiest(before, after, 10*time.Second, nil, 0.02, 10)
	if len(all) != 4 || all[3] != (busyProc{4, "new", 0.1}) {
		t.Errorf("all %+v", all)
	}
	if len(readAllProcs()) == 0 {
		t.Error("no processes in /proc")
	}
}
