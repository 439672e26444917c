package webtier

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// siteKeytab writes a keytab with a random key for svc_iispool.
func siteKeytab(t testing.TB) string {
	key, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	kt := filepath.Join(t.TempDir(), "web.keytab")
	if err := keytab.Save(kt, []keytab.Entry{{Principal: kmsg.Principal{NameType: 1, Components: []string{"svc_iispool"}, Realm: "LAB.LOCAL"},
		Timestamp: time.Now(), KVNO: 1, Key: key}}); err != nil {
		t.Fatal(err)
	}
	return kt
}

// FuzzNegotiateHeader sends arbitrary Authorization headers to the site: the
// answer is 401 (or 503 without a keytab), never a panic or a 500.
func FuzzNegotiateHeader(f *testing.F) {
	kt := siteKeytab(f)
	ev := events.NewMemory(64)
	h := New(Config{Keytab: kt, Realm: "LAB.LOCAL", KDC: "127.0.0.1:1", Events: ev}).Handler()
	for _, s := range []string{"Negotiate", "Negotiate YIIBAA==", "Negotiate oQcwBaADCgEC", "Basic Ym9iOng=", "NTLM TlRMTVNTUAABAAAA",
		"Negotiate " + base64.StdEncoding.EncodeToString([]byte{0x60, 0x80, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02})} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, hdr string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header["Authorization"] = []string{hdr}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("Authorization %q: status %d", hdr, w.Code)
		}
	})
}
