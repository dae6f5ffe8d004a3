package main

import "testing"

const perfOut = `# To display the perf.data header info, please use --header/--header-only options.
#
#
# Total Lost Samples: 0
#
# Samples: 1K of event 'cpu-clock'
# Event count (approx.): 4526000000
#
# Overhead  Shared Object
# ........  .................
#
    37.73%  [kernel.kallsyms]
    30.91%  libopus.so.0.8.0
    24.98%  vb-snap
     0.18%  [vdso]


#
# (Tip: ...)
#
`

func TestParsePerfReport(t *testing.T) {
	got, n := parsePerfReport(perfOut, 3)
	if n != 1000 {
		t.Errorf("samples %d", n)
	}
	want := []share{{"[kernel.kallsyms]", 37.73}, {"libopus.so.0.8.0", 30.91}, {"vb-snap", 24.98}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	sym, _ := parsePerfReport("    15.77%  [k] finish_task_switch.isra.0\n     1.15%  [.] runtime.chansend\n", 10)
	if len(sym) != 2 || sym[0].Name != "[k] finish_task_switch.isra.0" || sym[1].Percent != 1.15 {
		t.Errorf("symbols %+v", sym)
	}
}
