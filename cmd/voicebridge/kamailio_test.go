package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKamailioConfig checks the committed Kamailio dispatcher config
// (cmd/voicebridge/fleet/kamailio.cfg) with Debian's kamailio -c: it loads
// its modules, parses its routes and reads the dispatcher list. A broken copy
// must fail the same check, so the check can catch a mistake.
func TestKamailioConfig(t *testing.T) {
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/kamailio")
	}
	if err != nil {
		const msg = "kamailio is not installed: the config check needs Debian's kamailio (make deps-test installs it)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg, err := filepath.Abs(filepath.Join("fleet", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := filepath.Abs(filepath.Join("fleet", "dispatcher.list"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(path string) (string, error) {
		out, err := exec.Command(bin, "-c", "-f", path, "-A", `DISPATCHER_LIST="`+list+`"`).CombinedOutput()
		return string(out), err
	}
	if out, err := check(cfg); err != nil {
		t.Fatalf("kamailio -c %s: %v\n%s", cfg, err, out)
	}

	src, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), "ds_select_dst(", "ds_select_dest(", 1)
	if broken == string(src) {
		t.Fatal("the config no longer calls ds_select_dst")
	}
	bad := filepath.Join(t.TempDir(), "broken.cfg")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := check(bad); err == nil {
		t.Fatalf("kamailio -c accepted a config calling an unknown function:\n%s", out)
	}
}
