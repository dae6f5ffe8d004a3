package media

import "testing"

func TestLossCounter(t *testing.T) {
	var l LossCounter
	total := 0
	add := func(seqs ...int) {
		for _, s := range seqs {
			total += l.Add(uint16(s))
		}
	}
	// 65530.. wraps; 3 and 7 are lost, 5 comes late (within the window), 9
	// twice.
	add(65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 4, 6, 5, 8, 9, 9)
	if total != 0 {
		t.Fatalf("lost %d before the window passed", total)
	}
	for s := 10; s < 10+lossWindow; s++ {
		add(s)
	}
	if total != 2 {
		t.Fatalf("lost %d, want 2 (3 and 7)", total)
	}
	// Too late to matter: already counted, not uncounted.
	add(3)
	// A restart of the sequence is not a burst of loss.
	add(40000, 40001)
	for s := 40002; s < 40002+2*lossWindow; s++ {
		add(s)
	}
	if total != 2 {
		t.Fatalf("lost %d after a restart, want 2", total)
	}
	// A burst longer than the window.
	add(40002+2*lossWindow+200, 40002+2*lossWindow+201)
	for s := 40002 + 2*lossWindow + 202; s < 40002+3*lossWindow+300; s++ {
		add(s)
	}
	if total != 2+200 {
		t.Fatalf("lost %d after a 200-packet burst, want 202", total)
	}
	if a := testing.AllocsPerRun(100, func() { l.Add(uint16(total)); total++ }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
