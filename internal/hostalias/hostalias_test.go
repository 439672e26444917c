package hostalias

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestApplyWritesOnceAndResolves(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n10.1.2.3\tweb.lab.local web\n"), 0o644)
	spec := "dc.lab.local=127.0.0.1, web.lab.local=127.0.0.1,sql.lab.local=localhost"
	for i := 0; i < 2; i++ {
		if err := Apply(context.Background(), spec, hosts, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(hosts)
	s := string(b)
	if strings.Count(s, "dc.lab.local") != 1 || strings.Count(s, "sql.lab.local") != 1 || strings.Count(s, "web.lab.local") != 1 {
		t.Fatalf("hosts file:\n%s", s)
	}
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "sql.lab.local" && net.ParseIP(f[0]) == nil {
			t.Errorf("sql.lab.local not given an address: %q", line)
		}
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, bad := range []string{"dc.lab.local", "=dc", "dc.lab.local=", "a b=c", "x=y\n1.2.3.4 evil"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestApplyGivesUpOnAnUnknownName(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	err := Apply(context.Background(), "dc.lab.local=no-such-host.invalid", hosts, 0)
	if err == nil || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("err = %v", err)
	}
}
