package admin

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
)

func store(t *testing.T) *directory.Store {
	t.Helper()
	s, err := directory.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t *testing.T, s *directory.Store, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := Run(s, args, &out); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// The verbs change the directory as AD's tools change AD, and say so.
func TestVerbsChangeTheDirectory(t *testing.T) {
	s := store(t)
	if out := run(t, s, "setspn", "-L", "svc_iispool"); !strings.Contains(out, "HTTP/web.lab.local") {
		t.Fatalf("setspn -L: %s", out)
	}
	run(t, s, "setspn", "-D", "HTTP/web.lab.local", "svc_iispool")
	if e, _ := s.View().Account("svc_iispool"); strings.Contains(strings.Join(e.SPNs, " "), "HTTP/web.lab.local") {
		t.Fatal("setspn -D left the SPN")
	}
	out := run(t, s, "account", "password", "svc_mssqlserver", "N3w-Passw0rd!")
	if e, _ := s.View().Account("svc_mssqlserver"); e.KVNO != 2 || !strings.Contains(out, "msDS-KeyVersionNumber is now 2") {
		t.Fatalf("password reset: kvno %d, %q", e.KVNO, out)
	}
	run(t, s, "account", "set", "bob", "sensitive=true", "groups=+Protected Users")
	if e, _ := s.View().Account("bob"); !e.Sensitive || !strings.Contains(strings.Join(e.Groups, ","), "Protected Users") {
		t.Fatalf("account set: %+v", e.Account)
	}
	run(t, s, "delegation", "set", "svc_iispool", "none")
	if out := run(t, s, "delegation", "show", "svc_iispool"); !strings.Contains(out, "svc_iispool: not trusted for delegation") {
		t.Fatalf("delegation show: %s", out)
	}
	run(t, s, "policy", "set", "max_skew=2m", "sql.login=LAB\\alice:grant")
	l := s.View().Lab
	if l.Policy.MaxSkew.D() != 2*time.Minute {
		t.Fatalf("max_skew %s", l.Policy.MaxSkew.D())
	}
	if out := run(t, s, "policy"); !strings.Contains(out, "sql.login=LAB\\alice:grant") || !strings.Contains(out, "max_skew=2m0s") {
		t.Fatalf("policy show: %s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	s := store(t)
	for _, args := range [][]string{nil, {"nope"}, {"account", "bob"}, {"account", "frob", "bob"}, {"delegation", "set", "svc_iispool"}, {"policy", "frob"}} {
		if err := Run(s, args, &bytes.Buffer{}); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	for _, args := range [][]string{{"account", "show", "nobody"}, {"policy", "set", "nope=1"}, {"policy", "set", "sql.login=bob"}, {"account", "set", "bob", "sensitive=maybe"}} {
		if err := Run(s, args, &bytes.Buffer{}); err == nil || errors.Is(err, ErrUsage) {
			t.Errorf("%v: %v, want a refusal", args, err)
		}
	}
	// A refused change leaves the directory as it was.
	if e, _ := s.View().Account("bob"); e.Sensitive {
		t.Error("a refused account set changed bob")
	}
}

func TestHelp(t *testing.T) {
	s := store(t)
	for verb, want := range map[string]string{"setspn": "-S <spn> <account>", "account": "password <account>", "delegation": "constrained", "policy": "allow_rc4"} {
		if out := run(t, s, verb, "--help"); !strings.Contains(out, want) {
			t.Errorf("%s --help lacks %q: %s", verb, want, out)
		}
	}
	if got := strings.Join(ETypeNames([]int32{18, 17, 23}), ","); got != "aes256,aes128,rc4" { // the names msDS-SupportedEncryptionTypes takes in the lab file
		t.Errorf("ETypeNames = %s", got)
	}
}
