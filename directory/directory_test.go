package directory

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSalts(t *testing.T) {
	l := Default()
	for name, want := range map[string]string{
		"bob":         "LAB.LOCALbob",
		"svc_iispool": "LAB.LOCALsvc_iispool",
		"WEB$":        "LAB.LOCALhostweb.lab.local",
		"krbtgt":      "LAB.LOCALkrbtgt",
	} {
		if got := l.Account(name).Salt(l.Realm); got != want {
			t.Errorf("salt(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestResolveServiceHostMapping(t *testing.T) {
	s := openTemp(t)
	// The seed's start: no account holds HTTP/web.lab.local.
	if err := SetSPN(s, []string{"-D", "HTTP/web.lab.local", "svc_iispool"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	v := s.View()
	r, ok := v.ResolveService(kmsg.ParsePrincipalName("HTTP/web.lab.local"))
	if !ok || r.Entry.Name != "WEB$" || r.Via != "host-mapping" || r.MappedFrom != "HOST/web.lab.local" {
		t.Fatalf("HTTP/web.lab.local resolved to %+v ok=%v, want WEB$ via HOST mapping", r, ok)
	}
	// MSSQLSvc is not in sPNMappings: no implicit mapping.
	if _, ok := v.ResolveService(kmsg.ParsePrincipalName("MSSQLSvc/web.lab.local:1433")); ok {
		t.Fatal("MSSQLSvc must not map to HOST")
	}
	// The fix, live: setspn -S puts the SPN on svc_iispool.
	var out bytes.Buffer
	if err := SetSPN(s, []string{"-S", "HTTP/web.lab.local", "svc_iispool"}, &out); err != nil {
		t.Fatal(err, out.String())
	}
	if !strings.Contains(out.String(), "Updated object") {
		t.Fatalf("setspn output: %s", out.String())
	}
	r, ok = s.View().ResolveService(kmsg.ParsePrincipalName("http/WEB.lab.local"))
	if !ok || r.Entry.Name != "svc_iispool" || r.Via != "spn" {
		t.Fatalf("after setspn: %+v", r)
	}
}

func TestSetSPNDuplicates(t *testing.T) {
	s := openTemp(t)
	var out bytes.Buffer
	err := SetSPN(s, []string{"-S", "HOST/web.lab.local", "svc_iispool"}, &out)
	if !errors.Is(err, ErrDuplicateSPN) || !strings.Contains(out.String(), "CN=WEB,CN=Computers") {
		t.Fatalf("-S duplicate: err=%v out=%s", err, out.String())
	}
	if err := SetSPN(s, []string{"-A", "HOST/web.lab.local", "svc_iispool"}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	SetSPN(s, []string{"-X"}, &out)
	if !strings.Contains(out.String(), "HOST/web.lab.local is registered on these accounts") || !strings.Contains(out.String(), "found 1 group") {
		t.Fatalf("-X: %s", out.String())
	}
	r, ok := s.View().ResolveService(kmsg.ParsePrincipalName("HOST/web.lab.local"))
	if ok || len(r.Duplicates) != 2 {
		t.Fatalf("duplicate SPN must not resolve: %+v", r)
	}
	out.Reset()
	if err := SetSPN(s, []string{"-Q", "HOST/web.lab.local"}, &out); err != nil || !strings.Contains(out.String(), "CN=svc_iispool,") || !strings.Contains(out.String(), "CN=WEB,") {
		t.Fatalf("-Q: %v %s", err, out.String())
	}
}

func TestPersistenceAndKVNO(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := s.View().Account("svc_iispool")
	oldKey := old.Keys[kcrypto.ETypeAES256SHA1]
	kvno, err := SetPassword(s, "svc_iispool", "New-Passw0rd!")
	if err != nil || kvno != 2 {
		t.Fatalf("kvno %d err %v", kvno, err)
	}
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := s2.View().Account("svc_iispool")
	if e.KVNO != 2 || bytes.Equal(e.Keys[kcrypto.ETypeAES256SHA1].KeyValue, oldKey.KeyValue) {
		t.Fatalf("reopened store: kvno %d, key unchanged=%v", e.KVNO, bytes.Equal(e.Keys[kcrypto.ETypeAES256SHA1].KeyValue, oldKey.KeyValue))
	}
	// A change made through another Store on the same state (another process) is seen by the first.
	if err := SetSPN(s2, []string{"-S", "HTTP/extra.lab.local", "svc_iispool"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if len(s.View().SPNOwners("HTTP/extra.lab.local")) != 1 {
		t.Fatal("first store did not see the second store's change")
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s := openTemp(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := SetSPN(s, []string{"-S", fmt.Sprintf("HTTP/app%d.lab.local", i), "svc_iispool"}, &bytes.Buffer{}); err != nil {
				t.Error(err)
			}
			s.View()
		}(i)
	}
	wg.Wait()
	e, _ := s.View().Account("svc_iispool")
	if len(e.SPNs) != 22 {
		t.Fatalf("lost updates: %d SPNs", len(e.SPNs))
	}
}

func TestETypesPolicy(t *testing.T) {
	l := Default()
	a := l.Account("bob")
	if got := a.ETypes(false); len(got) != 2 || got[0] != kcrypto.ETypeAES256SHA1 {
		t.Fatalf("default etypes %v", got)
	}
	a.Enctypes = []string{"rc4"}
	if got := a.ETypes(false); len(got) != 0 {
		t.Fatalf("rc4-only account without allow_rc4 must have no etypes, got %v", got)
	}
	if got := a.ETypes(true); len(got) != 1 || got[0] != kcrypto.ETypeRC4HMAC {
		t.Fatalf("rc4 allowed: %v", got)
	}
}

// A UPN may not take over another account's name (krbtgt least of all), and
// the lab needs exactly one krbtgt with a usable key.
func TestValidateRejectsNameTakeover(t *testing.T) {
	l := Default()
	l.Account("alice").UPN = "krbtgt@lab.local"
	if err := l.Validate(); err == nil {
		t.Fatal("a UPN naming krbtgt was accepted")
	}
	l = Default()
	l.Account("alice").UPN = "bob@lab.local"
	if err := l.Validate(); err == nil {
		t.Fatal("a UPN naming bob was accepted")
	}
	l = Default()
	l.Account("krbtgt").Enctypes = []string{"rc4"}
	if err := l.Validate(); err == nil {
		t.Fatal("a krbtgt without usable keys was accepted")
	}
	l = Default()
	l.Account("alice").UPN = "alice.smith@lab.local"
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	v, err := ViewOf(l)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := v.Account("alice.smith"); !ok || e.Name != "alice" {
		t.Fatal("UPN lookup")
	}
	if v.Krbtgt().Name != "krbtgt" {
		t.Fatal("krbtgt by type")
	}
}
