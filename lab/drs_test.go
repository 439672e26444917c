package lab

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/ntlm"
)

// DCSync against the lab's DC: the replication interface (DRSUAPI, found
// through the endpoint mapper on port 135) hands an account's secrets to a
// Domain Admin, and the keys that come out are the account's real keys —
// what a joining DC needs and what an attacker with DS-Replication-Get-
// Changes-All takes. Two clients that attackers and admins use: Samba's
// own (python3-samba, as samba-tool drs replicate does it) and impacket's
// secretsdump machinery. Each over Kerberos and over NTLM, at packet privacy.

const drsHost = "127.0.1.90"

func drsLab(t *testing.T) *Lab {
	t.Helper()
	return startLabWith(t, nil, Options{Host: drsHost, KDCPort: 88, LDAPPort: 389, RPCPort: RPCPort})
}

// bobKeys are the NT hash and the AES keys that bob's password gives.
func bobKeys(t *testing.T, l *Lab) (nt, aes256, aes128 string) {
	t.Helper()
	pw := l.Password("bob")
	k256, err := kcrypto.StringToKey(pw, "LAB.LOCALbob", kcrypto.ETypeAES256SHA1)
	if err != nil {
		t.Fatal(err)
	}
	k128, err := kcrypto.StringToKey(pw, "LAB.LOCALbob", kcrypto.ETypeAES128SHA1)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(ntlm.NTHash(pw)), hex.EncodeToString(k256.KeyValue), hex.EncodeToString(k128.KeyValue)
}

// python runs one of testdata's scripts with Debian's python3.
func python(t *testing.T, l *Lab, py, script string, args ...string) string {
	t.Helper()
	out, err := pythonErr(t, l, py, script, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	return out
}

func pythonErr(t *testing.T, l *Lab, py, script string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	abs, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, py, append([]string{abs}, args...)...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRB5") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "KRB5_CONFIG="+l.Krb5Conf())
	if strings.HasPrefix(script, "samba") {
		// Samba's client keeps its tickets here; impacket takes a set
		// KRB5CCNAME as a cache it must read.
		cmd.Env = append(cmd.Env, "KRB5CCNAME="+filepath.Join(cmd.Dir, "krb5cc"))
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// replications counts the DC's 4662 events for replicating secrets.
func replications(t *testing.T, l *Lab, outcome, client string) int {
	t.Helper()
	evs, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.ID == events.ObjectOperation && e.Reason == "DS_REPLICATION_GET_CHANGES_ALL" && e.Outcome == outcome && strings.HasPrefix(e.Client, client) {
			n++
		}
	}
	return n
}

func TestDRSSambaClient(t *testing.T) {
	py := peer.Python(t, "samba.dcerpc.drsuapi", "python3-samba")
	l := drsLab(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "smb.conf")
	os.WriteFile(conf, []byte("[global]\n\tworkgroup = LAB\n\trealm = LAB.LOCAL\n\tnetbios name = WS01\n\tserver role = standalone server\n"+
		"\tprivate dir = "+dir+"\n\tlock dir = "+dir+"\n\tstate directory = "+dir+"\n\tcache directory = "+dir+"\n"), 0o600)
	nt, aes256, aes128 := bobKeys(t, l)
	for _, mech := range []string{"krb", "ntlm"} {
		out := python(t, l, py, "samba_drs.py", conf, drsHost, "administrator", l.Password("administrator"), mech, "bob")
		mustContain(t, "Samba's DsGetNCChanges ("+mech+")", out, "LEVEL 6 EXOP 1", "NTHASH "+nt, "SALT LAB.LOCALbob",
			"KEY 18 "+aes256, "KEY 17 "+aes128)
	}
	if n := replications(t, l, events.Success, "administrator"); n != 2 {
		t.Errorf("%d granted replications logged (4662), want 2", n)
	}
	// Bob is no Domain Admin: ERROR_DS_DRA_ACCESS_DENIED, and a failure audit.
	out := python(t, l, py, "samba_drs.py", conf, drsHost, "bob", l.Password("bob"), "krb", "administrator")
	mustContain(t, "bob's DsGetNCChanges", out, "ERROR 8453 WERR_DS_DRA_ACCESS_DENIED")
	if n := replications(t, l, events.Failure, "bob"); n != 1 {
		t.Errorf("%d refused replications by bob logged (4662 failure), want 1", n)
	}
}

func TestDRSImpacketDCSync(t *testing.T) {
	py := peer.Python(t, "impacket.examples.secretsdump", "python3-impacket")
	l := drsLab(t)
	nt, aes256, aes128 := bobKeys(t, l)
	admin := []string{drsHost, "dc.lab.local", "LAB.LOCAL", "administrator", l.Password("administrator"), "bob"}
	for _, mode := range [][]string{nil, {"-k"}} {
		out := python(t, l, py, "impacket_dcsync.py", append(admin, mode...)...)
		mustContain(t, "secretsdump -just-dc-user bob "+strings.Join(mode, ""), out,
			":aad3b435b51404eeaad3b435b51404ee:"+nt+":::",
			"bob:aes256-cts-hmac-sha1-96:"+aes256, "bob:aes128-cts-hmac-sha1-96:"+aes128)
	}
	out, err := pythonErr(t, l, py, "impacket_dcsync.py", drsHost, "dc.lab.local", "LAB.LOCAL", "bob", l.Password("bob"), "administrator")
	if err == nil {
		t.Fatalf("bob's DCSync succeeded:\n%s", out)
	}
	mustContain(t, "bob's DCSync", out, "ERROR_DS_DRA_ACCESS_DENIED")
	if n := replications(t, l, events.Failure, "bob"); n != 1 {
		t.Errorf("%d refused replications by bob logged (4662 failure), want 1", n)
	}
}
