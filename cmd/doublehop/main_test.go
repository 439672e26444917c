package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/lab"
)

// cli runs the doublehop command line in-process.
func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), code
}

// The commands a newcomer types, against an embedded lab: Bob's client, the
// admin tools, events and explain, and the scenario runner.
func TestCLIEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	state := t.TempDir()
	l, err := lab.Start(ctx, lab.Options{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("KRB5CCNAME", "")
	t.Setenv("KRB5_CONFIG", "")
	must := func(want string, args ...string) string {
		t.Helper()
		out, code := cli(t, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("doublehop %s: exit %d, want %q in:\n%s", strings.Join(args, " "), code, want, out)
		}
		return out
	}
	must("TGT until", "client", "--state", state, "kinit", "--lab-password", "bob")
	must("krbtgt/LAB.LOCAL@LAB.LOCAL", "client", "--state", state, "klist")
	must(`running as: <b>LAB\bob</b>`, "client", "--state", state, "get", l.WebURL)
	must(`"login": "LAB\\bob"`, "client", "--state", state, "get", "--json", l.WebURL)
	must("HTTP/web.lab.local", "setspn", "--state", state, "-L", "svc_iispool")
	if out, code := cli(t, "setspn", "--state", state, "-S", "HOST/web.lab.local", "svc_iispool"); code != 1 || !strings.Contains(out, "Duplicate SPN found") {
		t.Fatalf("setspn -S duplicate: exit %d\n%s", code, out)
	}
	must("not trusted for delegation", "delegation", "--state", state, "set", "svc_iispool", "none")
	out, _ := cli(t, "client", "--state", state, "get", "--json", l.WebURL)
	if !strings.Contains(out, "ANONYMOUS LOGON") {
		t.Fatalf("no delegation should end in ANONYMOUS LOGON:\n%s", out)
	}
	must("KDC_ERR_BADOPTION", "events", "--state", state, "--failures")
	must("[no-delegation]", "explain", "--state", state)
	must("wrote", "keytab", "--state", state, "-o", filepath.Join(state, "all.keytab"), "--all")
	if _, err := os.Stat(filepath.Join(state, "all.keytab")); err != nil {
		t.Fatal(err)
	}
	must("PASS", "scenario", "run", "kcd", "-q")                              // a fresh embedded lab
	must("PASS", "scenario", "run", "wrong-password", "-q", "--state", state) // the running lab
	if out, code := cli(t, "scenario", "run", "nosuch"); code == 0 || !strings.Contains(out, `no scenario "nosuch"`) {
		t.Fatalf("scenario run nosuch: exit %d\n%s", code, out)
	}
	must("seed-part1", "scenario", "list")
	if out, code := cli(t, "nonsense"); code != 2 || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, out)
	}
}
