package ntds_test

import (
	"encoding/hex"
	"testing"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dtyp"
	"github.com/doublehop/doublehop/ntds"
)

// AD's extended DNs find an object by SID in both forms clients send:
// S-1-5-… (Windows tools) and the hex of the binary SID (Samba's ldb).
func TestResolveSIDForms(t *testing.T) {
	v, err := directory.ViewOf(directory.Default())
	if err != nil {
		t.Fatal(err)
	}
	tr := ntds.Build(v)
	sid := v.Lab.DomainSID + "-525"
	s, _ := dtyp.ParseSID(sid)
	for _, base := range []string{"<SID=" + sid + ">", "<SID=" + hex.EncodeToString(s.Binary()) + ">"} {
		n, ok := tr.Resolve(base)
		if !ok || n != "cn=protected users,cn=users,dc=lab,dc=local" {
			t.Errorf("%s resolved to %q, %v", base, n, ok)
		}
	}
	if _, ok := tr.Resolve("<SID=" + v.Lab.DomainSID + "-9999>"); ok {
		t.Error("an unknown SID resolved")
	}
}
