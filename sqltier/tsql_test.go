package sqltier

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/peer"
)

// freetdsTsql runs FreeTDS tsql against ts with Kerberos from ccache (no -U: GSSAPI)
// and returns its output. encryption is freetds.conf's setting (off,
// request, require).
func freetdsTsql(t *testing.T, r *testRealm, ts *testServer, ccache, encryption, input string, extraConf ...string) (string, error) {
	t.Helper()
	path := peer.Need1(t, "tsql")
	dir := t.TempDir()
	conf := fmt.Sprintf("[labsql]\n\thost = 127.0.0.1\n\tport = %s\n\ttds version = 7.4\n\tspn = %s\n\tencryption = %s\n", ts.port, spnPort, encryption)
	for _, l := range extraConf {
		conf += "\t" + l + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "freetds.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-S", "labsql")
	cmd.Env = append(r.env(ccache), "FREETDSCONF="+filepath.Join(dir, "freetds.conf"), "TDSDUMP=", "HOME="+dir)
	if os.Getenv("SQLTIER_TDSDUMP") != "" {
		cmd.Env = append(cmd.Env, "TDSDUMP="+filepath.Join(os.TempDir(), "sqltier-tdsdump.log"))
	}
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const tsqlQueries = "SELECT SUSER_SNAME()\ngo\nSELECT SYSTEM_USER\ngo\nSELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID\ngo\nSELECT 1\ngo\nSELECT id, item FROM dbo.orders\ngo\nSELECT delegation, mutual_auth, gss_mech FROM lab.connection_info\ngo\nSELECT * FROM nope\ngo\nquit\n"

func TestTsqlBob(t *testing.T) {
	r := labRealm(t)
	for _, tc := range []struct {
		name, server, client, option string
	}{
		{"clear", "not-supported", "request", "FALSE"},
		{"login-only TLS", "off", "request", "LOGIN_ONLY"},
		{"client without TLS", "off", "off", "FALSE"},
		{"full TLS", "off", "require", "TRUE"},
		{"forced TLS", "on", "request", "TRUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := ParseEncryption(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, r.keytab, func(c *Config) { c.Encryption = enc })
			q := strings.Replace(tsqlQueries, "SELECT 1\n", "SELECT 1\ngo\nSELECT encrypt_option FROM lab.connection_info\n", 1)
			out, err := freetdsTsql(t, r, ts, r.ccache(t, "bob", spnPort), tc.client, q)
			if err != nil {
				t.Fatalf("tsql: %v\n%s", err, out)
			}
			for _, want := range []string{"LAB\\bob\n", "KERBEROS\n", "Kerberos for dummies", "Second monitor",
				"none\t1\tkrb5", "Invalid object name 'nope'.", "\n" + tc.option + "\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("tsql output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "Conference ticket") {
				t.Errorf("bob sees alice's orders:\n%s", out)
			}
		})
	}
}

func TestTsqlAlice(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	out, _ := freetdsTsql(t, r, ts, r.ccache(t, "alice", spnPort), "off", "SELECT 1\ngo\nquit\n")
	if !strings.Contains(out, "Login failed for user 'LAB\\alice'.") {
		t.Errorf("tsql output:\n%s", out)
	}
	ev := ts.waitEvent(t, 18456)
	if ev.State != 12 || !strings.Contains(ev.Message, "Login-based server access validation failed") {
		t.Errorf("event = %+v", ev)
	}
}
