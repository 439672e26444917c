package conformance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/internal/peer"
)

// Samba's krb5 suite, written against Windows DCs, in every make test: the
// files that take seconds (the KDC's AS and TGS answers, S4U and RBCD,
// FAST, read-only DCs' TGTs, user-to-user; accounts made over LDAP and
// their keys read back over DRSUAPI). Each file must pass at least what it
// passed when the fixes landed (TESTING.md has the full run and why the
// rest fail), so a regression in any of them fails here.
func TestSambaKrb5Suite(t *testing.T) {
	if m := Missing(); len(m) > 0 {
		peer.Missing(t, "Samba's krb5 tests (apt-get install "+strings.Join(m, " ")+")")
	}
	floor := map[string]int{"as_req_tests": 215, "kdc_tgs_tests": 205, "s4u_tests": 51, "fast_tests": 72}
	files := []string{"as_req_tests", "kdc_tgs_tests", "s4u_tests", "fast_tests"}
	rs, err := RunSamba(context.Background(), Options{Files: files, LogDir: t.TempDir(),
		Policy: func(l *directory.Lab) { l.Policy.AllowRC4 = true }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Log(r.Line())
		if r.Passed < floor[r.File] {
			var causes []string
			for c, n := range r.Causes {
				causes = append(causes, fmt.Sprintf("%s (%d)", c, n))
			}
			t.Errorf("%s: %d passed, at least %d expected; failures: %s", r.File, r.Passed, floor[r.File], strings.Join(causes, "; "))
		}
	}
	if len(rs) != len(files) {
		t.Fatalf("%d files ran, want %d", len(rs), len(files))
	}
}
