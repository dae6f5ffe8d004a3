package plainrtp

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in       string
		min, max int
		bad      bool
	}{
		{"", 0, 0, false},
		{"40000-40999", 40000, 40999, false},
		{" 40001 - 40003 ", 40001, 40003, false},
		{"40000-40001", 40000, 40001, false},
		{"40001-40002", 0, 0, true}, // no even/odd pair
		{"40000", 0, 0, true},
		{"a-b", 0, 0, true},
		{"500-600", 0, 0, true},
		{"40000-70000", 0, 0, true},
		{"41000-40000", 0, 0, true},
	} {
		min, max, err := ParsePortRange(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrPortRange) {
				t.Errorf("%q: err %v, want ErrPortRange", tc.in, err)
			}
			continue
		}
		if err != nil || min != tc.min || max != tc.max {
			t.Errorf("%q: %d-%d %v, want %d-%d", tc.in, min, max, err, tc.min, tc.max)
		}
	}
}

// freeRange finds a range of n free even/odd pairs by asking the OS.
func freeRange(t *testing.T, pairs int) (int, int) {
	t.Helper()
	for range 50 {
		p := &PortPool{}
		a, b, err := p.listenEphemeral(netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		base := netip.MustParseAddrPort(a.LocalAddr().String()).Port()
		_ = a.Close()
		_ = b.Close()
		if int(base)+2*pairs <= 65535 {
			return int(base), int(base) + 2*pairs - 1
		}
	}
	t.Fatal("no free range")
	return 0, 0
}

func TestPortPoolPairsAndExhaustion(t *testing.T) {
	lo, hi := freeRange(t, 2)
	pool := NewPortPool(lo, hi)
	cfg := Config{Pool: pool, LocalIP: netip.MustParseAddr("127.0.0.1")}
	a, err := Listen(cfg)
	if err != nil {
		t.Skipf("range %d-%d taken meanwhile: %v", lo, hi, err)
	}
	defer a.Close()
	b, err := Listen(cfg)
	if err != nil {
		t.Skipf("range %d-%d taken meanwhile: %v", lo, hi, err)
	}
	for _, tr := range []*Transport{a, b} {
		if p := tr.LocalPort(); p%2 != 0 || p < lo || p+1 > hi {
			t.Errorf("port %d: want an even port with its pair in %d-%d", p, lo, hi)
		}
	}
	if a.LocalPort() == b.LocalPort() {
		t.Fatalf("both transports got port %d", a.LocalPort())
	}
	if _, err := Listen(cfg); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("third Listen: %v, want ErrNoPorts", err)
	}
	if pool.InUse() != 2 {
		t.Fatalf("InUse %d, want 2", pool.InUse())
	}
	b.Close()
	b.Close() // idempotent
	if pool.InUse() != 1 {
		t.Fatalf("InUse after Close %d, want 1", pool.InUse())
	}
	c, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen after a release: %v", err)
	}
	c.Close()
}
