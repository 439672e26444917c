package lab

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
)

// MIT kinit, klist, kvno and kvno -k against the lab's KDC (issue 2 acceptance).
func TestMITToolsAgainstKDC(t *testing.T) {
	l := startLab(t, nil)
	cc := filepath.Join(t.TempDir(), "cc")
	out, err := tool(t, l, cc, l.Password("bob")+"\n", "kinit", "bob")
	if err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	out, err = tool(t, l, cc, "", "klist", "-e", "-f")
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, out)
	}
	mustContain(t, "klist", out, "Default principal: bob@LAB.LOCAL", "krbtgt/LAB.LOCAL@LAB.LOCAL", "Flags: FRIA", "aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96")
	out, err = tool(t, l, cc, "", "kvno", "HTTP/web.lab.local", "MSSQLSvc/sql.lab.local:1433")
	if err != nil {
		t.Fatalf("kvno: %v\n%s", err, out)
	}
	mustContain(t, "kvno", out, "HTTP/web.lab.local@LAB.LOCAL: kvno = 1", "MSSQLSvc/sql.lab.local:1433@LAB.LOCAL: kvno = 1")
	kt := filepath.Join(t.TempDir(), "web.keytab")
	if err := ExportKeytab(l.Store, "svc_iispool", kt); err != nil {
		t.Fatal(err)
	}
	out, err = tool(t, l, cc, "", "kvno", "-k", kt, "HTTP/web.lab.local")
	if err != nil {
		t.Fatalf("kvno -k: %v\n%s", err, out)
	}
	mustContain(t, "kvno -k", out, "keytab entry valid")
	out, err = tool(t, l, filepath.Join(t.TempDir(), "cc2"), "not-the-password\n", "kinit", "bob")
	if err == nil {
		t.Fatalf("kinit with a wrong password succeeded:\n%s", out)
	}
	if !bytes.Contains([]byte(out), []byte("Password incorrect")) && !bytes.Contains([]byte(out), []byte("Preauthentication failed")) {
		t.Fatalf("wrong password: want MIT's pre-authentication failure, got:\n%s", out)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.PreauthFailed && e.Code == 24 && e.Client == "bob@LAB.LOCAL"
	}); !ok {
		t.Fatal("no 4771 event with failure code 24 (KDC_ERR_PREAUTH_FAILED)")
	}
}

// The seed's mechanism with MIT tools: HTTP/web.lab.local on nobody → the
// ticket is encrypted with WEB$'s key and svc_iispool's keytab cannot
// decrypt it; setspn -S, live, fixes it.
func TestMITSeedHostMapping(t *testing.T) {
	l := startLab(t, func(lab *directory.Lab) {
		a := lab.Account("svc_iispool")
		a.SPNs = nil // the seed's starting point: no HTTP SPN at all
	})
	kt := filepath.Join(t.TempDir(), "web.keytab")
	if err := ExportKeytab(l.Store, "svc_iispool", kt); err != nil {
		t.Fatal(err)
	}
	cc := filepath.Join(t.TempDir(), "cc")
	if out, err := tool(t, l, cc, l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	out, err := tool(t, l, cc, "", "kvno", "-k", kt, "HTTP/web.lab.local")
	if err == nil {
		t.Fatalf("svc_iispool's keytab decrypted a ticket meant for WEB$:\n%s", out)
	}
	e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.ServiceTicket && e.Service == "HTTP/web.lab.local" })
	if !ok || e.Account != "WEB$" || e.Reason != "SPN_MAPPED_TO_HOST" {
		t.Fatalf("4769 should say the ticket was encrypted for WEB$ via HOST/web.lab.local: %+v", e)
	}
	var w bytes.Buffer
	if err := directory.SetSPN(l.Store, []string{"-S", "HTTP/web.lab.local", "svc_iispool"}, &w); err != nil {
		t.Fatal(err, w.String())
	}
	if err := ExportKeytab(l.Store, "svc_iispool", kt); err != nil {
		t.Fatal(err)
	}
	cc2 := filepath.Join(t.TempDir(), "cc")
	tool(t, l, cc2, l.Password("bob")+"\n", "kinit", "bob")
	out, err = tool(t, l, cc2, "", "kvno", "-k", kt, "HTTP/web.lab.local")
	if err != nil {
		t.Fatalf("after setspn -S: %v\n%s", err, out)
	}
	mustContain(t, "kvno -k after setspn", out, "keytab entry valid")
}

// User-to-user (RFC 4120 §3.3.3) with MIT's kvno --u2u: svc_iispool asks
// for a ticket to bob sealed in the session key of bob's TGT (as a service
// without a long-term key of its own would be reached); a ticket for
// another name than the TGT's client is KRB_AP_ERR_BADMATCH.
func TestMITUserToUser(t *testing.T) {
	l := startLab(t, nil)
	dir := t.TempDir()
	bobCC, svcCC := filepath.Join(dir, "bob"), filepath.Join(dir, "svc")
	if out, err := tool(t, l, bobCC, l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit bob: %v\n%s", err, out)
	}
	if out, err := tool(t, l, svcCC, l.Password("svc_iispool")+"\n", "kinit", "svc_iispool"); err != nil {
		t.Fatalf("kinit svc_iispool: %v\n%s", err, out)
	}
	out, err := tool(t, l, svcCC, "", "kvno", "--u2u", bobCC, "bob")
	if err != nil {
		t.Fatalf("kvno --u2u: %v\n%s", err, out)
	}
	mustContain(t, "kvno --u2u", out, "bob@LAB.LOCAL: kvno = 0")
	e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.ServiceTicket && e.Mechanism == "user-to-user" })
	if !ok || e.Outcome != events.Success || e.Account != "bob" || e.Client != "svc_iispool@LAB.LOCAL" {
		t.Fatalf("4769 for the user-to-user ticket: %+v", e)
	}
	out, err = tool(t, l, svcCC, "", "kvno", "--u2u", bobCC, "administrator")
	if err == nil {
		t.Fatalf("a user-to-user ticket to administrator with bob's TGT:\n%s", out)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.Reason == "U2U_BADMATCH"
	}); !ok {
		t.Fatalf("no 4769 failure U2U_BADMATCH; kvno said:\n%s", out)
	}
}

// FAST (RFC 6113, Kerberos armoring) with MIT's kinit -T: svc_iispool's
// TGT armors bob's AS exchange (the encrypted challenge inside the tunnel,
// the reply key strengthened), the KDC says in the AS-REP's encrypted
// padata that it takes armor, and kvno then armors its TGS request with
// the TGT's own session; a wrong password is refused inside the tunnel.
func TestMITFAST(t *testing.T) {
	l := startLab(t, func(lab *directory.Lab) { lab.Policy.KerberosArmoring = "supported" })
	dir := t.TempDir()
	armor, bobCC := filepath.Join(dir, "armor"), filepath.Join(dir, "bob")
	if out, err := tool(t, l, armor, l.Password("svc_iispool")+"\n", "kinit", "svc_iispool"); err != nil {
		t.Fatalf("kinit svc_iispool: %v\n%s", err, out)
	}
	if out, err := tool(t, l, bobCC, l.Password("bob")+"\n", "kinit", "-T", armor, "bob"); err != nil {
		t.Fatalf("kinit -T: %v\n%s", err, out)
	}
	// MIT keeps the KDC's answer to FAST negotiation in the cache.
	out, err := tool(t, l, bobCC, "", "klist", "-C")
	if err != nil {
		t.Fatalf("klist -C: %v\n%s", err, out)
	}
	mustContain(t, "klist -C after kinit -T", out, "fast_avail(krbtgt/LAB.LOCAL@LAB.LOCAL) = yes", "pa_type(krbtgt/LAB.LOCAL@LAB.LOCAL) = 138")
	out, err = tool(t, l, bobCC, "", "kvno", "HTTP/web.lab.local")
	if err != nil {
		t.Fatalf("kvno with FAST: %v\n%s", err, out)
	}
	mustContain(t, "kvno", out, "HTTP/web.lab.local@LAB.LOCAL: kvno = 1")
	out, err = tool(t, l, filepath.Join(dir, "bad"), "not-the-password\n", "kinit", "-T", armor, "bob")
	if err == nil || !bytes.Contains([]byte(out), []byte("Password incorrect")) && !bytes.Contains([]byte(out), []byte("Preauthentication failed")) {
		t.Fatalf("a wrong password through FAST: %v\n%s", err, out)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.PreauthFailed && e.Code == 24 && e.Client == "bob@LAB.LOCAL"
	}); !ok {
		t.Fatal("no 4771 with KDC_ERR_PREAUTH_FAILED for the armored wrong password")
	}
}
