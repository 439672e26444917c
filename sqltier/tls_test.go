package sqltier

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/selfcert"
)

func TestGoMSSQLEncryption(t *testing.T) {
	r := labRealm(t)
	cert, err := selfcert.New("sql.lab.local", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(t.TempDir(), "sql.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	cc := r.ccache(t, "bob", spnPort)
	for _, tc := range []struct {
		name    string
		server  Encryption
		dsn     string
		option  string // lab.connection_info.encrypt_option; "" = login fails
		errText string
	}{
		{"not supported, default DSN", EncryptionNotSupported, "", "FALSE", ""},
		{"not supported, encrypt=true", EncryptionNotSupported, "encrypt=true&trustservercertificate=true", "", "server does not support encryption"},
		{"off, default DSN: login only", EncryptionOff, "", "LOGIN_ONLY", ""},
		{"off, small packets: login only over several packets", EncryptionOff, "packet+size=512", "LOGIN_ONLY", ""},
		{"off, encrypt=true", EncryptionOff, "encrypt=true&trustservercertificate=true", "TRUE", ""},
		{"off, encrypt=disable", EncryptionOff, "encrypt=disable", "FALSE", ""},
		{"on, default DSN", EncryptionOn, "", "TRUE", ""},
		{"on, encrypt=true, big packets", EncryptionOn, "encrypt=true&trustservercertificate=true&packet+size=32767", "TRUE", ""},
		{"on, encrypt=disable", EncryptionOn, "encrypt=disable", "", ""},
		{"strict", EncryptionStrict, "encrypt=strict&certificate=" + pemPath + "&hostnameincertificate=sql.lab.local", "STRICT", ""},
		{"off accepts strict clients", EncryptionOff, "encrypt=strict&certificate=" + pemPath + "&hostnameincertificate=sql.lab.local", "STRICT", ""},
		{"strict refuses clear PRELOGIN", EncryptionStrict, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, r.keytab, func(c *Config) { c.Encryption = tc.server; c.TLSConfig = tlsCfg })
			db := openDB(t, ts.dsn(r, cc, spnPort, tc.dsn))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var opt, who string
			err := db.QueryRowContext(ctx, "SELECT encrypt_option, SUSER_SNAME() FROM lab.connection_info").Scan(&opt, &who)
			if tc.option == "" {
				if err == nil {
					t.Fatalf("login succeeded with encrypt_option %s", opt)
				}
				if tc.errText != "" && !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("err = %v, want %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opt != tc.option || who != `LAB\bob` {
				t.Errorf("encrypt_option = %s, login %s; want %s", opt, who, tc.option)
			}
			// A few round trips on the same connection.
			for i := 0; i < 3; i++ {
				var s string
				if err := db.QueryRowContext(ctx, "SELECT item FROM dbo.orders WHERE id = @p1", 2).Scan(&s); err != nil || s != "Network capture license" {
					t.Fatalf("query %d: %q %v", i, s, err)
				}
			}
		})
	}
}
