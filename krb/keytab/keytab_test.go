package keytab_test

import (
	"bytes"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/mitkdc"
	"github.com/doublehop/doublehop/internal/mitkdc/mitkdctest"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
)

func ktSample() []keytab.Entry {
	ts := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	http := kmsg.Principal{NameType: 1, Components: []string{"HTTP", "web.lab.local"}, Realm: "LAB.LOCAL"}
	return []keytab.Entry{
		{Principal: http, Timestamp: ts, KVNO: 3, Key: types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{0x11}, 32)}},
		{Principal: http, Timestamp: ts, KVNO: 3, Key: types.EncryptionKey{KeyType: 17, KeyValue: bytes.Repeat([]byte{0x22}, 16)}},
		{Principal: kmsg.Principal{NameType: 1, Components: []string{"svc_iispool"}, Realm: "LAB.LOCAL"}, Timestamp: ts, KVNO: 300,
			Key: types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{0x33}, 32)}},
	}
}

func TestKeytabRoundTrip(t *testing.T) {
	es := ktSample()
	b := keytab.Marshal(es)
	if !bytes.Equal(b[:2], []byte{5, 2}) {
		t.Fatalf("version % x", b[:2])
	}
	got, err := keytab.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, es) {
		t.Fatalf("got %+v\nwant %+v", got, es)
	}
	// Entry 3 carries the 32-bit kvno, the 8-bit field is 300&0xff = 44.
	if !bytes.Contains(b, []byte{44, 0, 18, 0, 32}) || !bytes.HasSuffix(b, []byte{0, 0, 1, 0x2c}) {
		t.Fatal("kvno 300 encoding")
	}
	// kvno <= 255: no extension field (entry length = fields only).
	one := keytab.Marshal(es[:1])
	if len(one) != 2+4+2+(2+9)+(2+4)+(2+13)+4+4+1+2+2+32 {
		t.Fatalf("entry size %d", len(one))
	}
}

func TestKeytabZeroTimestamp(t *testing.T) {
	es := ktSample()[:1]
	es[0].Timestamp = time.Time{}
	got, err := keytab.Parse(keytab.Marshal(es))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(got[0].Timestamp); d < 0 || d > time.Minute {
		t.Fatalf("timestamp %v", got[0].Timestamp)
	}
}

func TestKeytabHolesAndBounds(t *testing.T) {
	es := ktSample()
	b := keytab.Marshal(es[:1])
	// A hole (negative length, zero filled), then the entry, then a 0 end marker and junk.
	var hole []byte
	hole = append(hole, 0xff, 0xff, 0xff, 0xf0) // -16
	hole = append(hole, make([]byte, 16)...)
	withHole := append(append(append([]byte{5, 2}, hole...), b[2:]...), 0, 0, 0, 0, 0xde, 0xad)
	got, err := keytab.Parse(withHole)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], es[0]) {
		t.Fatalf("hole: %v %+v", err, got)
	}
	for n := 0; n < len(b); n++ {
		if _, err := keytab.Parse(b[:n]); err == nil && n > 2 && n != len(b) {
			// Fewer than 4 trailing bytes is MIT's end of file; anything longer must fail.
			if n-2 >= 4 {
				t.Fatalf("prefix %d parsed", n)
			}
		}
	}
	for _, bad := range [][]byte{nil, {5}, {5, 3}, {5, 2, 0x7f, 0xff, 0xff, 0xff, 0}, {5, 2, 0x80, 0, 0, 0}, {5, 2, 0, 0, 0, 4, 0xff, 0xff, 0, 0}} {
		if _, err := keytab.Parse(bad); err == nil {
			t.Fatalf("% x accepted", bad)
		}
	}
}

func TestKeytabVersion1(t *testing.T) {
	// 0x0501: little-endian, realm counted among the components, no name type.
	b := []byte{5, 1}
	entry := []byte{
		2, 0, // count incl. realm
		1, 0, 'R', 3, 0, 'b', 'o', 'b',
		0x10, 0, 0, 0, // timestamp 16
		7,     // kvno
		17, 0, // enctype
		2, 0, 0xaa, 0xbb,
	}
	b = append(b, byte(len(entry)), 0, 0, 0)
	b = append(b, entry...)
	got, err := keytab.Parse(b)
	if err != nil || len(got) != 1 {
		t.Fatal(err)
	}
	e := got[0]
	if e.Principal.String() != "bob@R" || e.KVNO != 7 || e.Key.KeyType != 17 || e.Timestamp.Unix() != 16 {
		t.Fatalf("%+v", e)
	}
}

func TestKeytabSaveLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.keytab")
	if err := keytab.Save("WRFILE:"+p, ktSample()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", err, fi.Mode())
	}
	got, err := keytab.Load("FILE:" + p)
	if err != nil || !reflect.DeepEqual(got, ktSample()) {
		t.Fatalf("%v %+v", err, got)
	}
	if _, err := keytab.Load("MEMORY:x"); err == nil {
		t.Fatal("MEMORY: accepted")
	}
	bad := ktSample()[:1]
	bad[0].Principal.Components = nil
	if err := keytab.Save(p, bad); err == nil {
		t.Fatal("empty principal accepted")
	}
}

func TestGokrbKeytab(t *testing.T) {
	kt, err := keytab.Gokrb5(ktSample())
	if err != nil {
		t.Fatal(err)
	}
	name := types.PrincipalName{NameType: 1, NameString: []string{"svc_iispool"}}
	k, kvno, err := kt.GetEncryptionKey(name, "LAB.LOCAL", 0, 18)
	if err != nil || kvno != 300 || k.KeyValue[0] != 0x33 {
		t.Fatalf("svc_iispool: %v kvno %d", err, kvno)
	}
	name = types.PrincipalName{NameType: 2, NameString: []string{"HTTP", "web.lab.local"}}
	if k, kvno, err := kt.GetEncryptionKey(name, "LAB.LOCAL", 3, 17); err != nil || kvno != 3 || len(k.KeyValue) != 16 {
		t.Fatalf("HTTP aes128: %v kvno %d", err, kvno)
	}
	// Zero timestamps would make gokrb5 miss the entry; we write now instead.
	es := ktSample()
	for i := range es {
		es[i].Timestamp = time.Time{}
	}
	kt, err = keytab.Gokrb5(es)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kt.GetEncryptionKey(name, "LAB.LOCAL", 0, 18); err != nil {
		t.Fatal(err)
	}
}

func TestKeytabMITKlistReadsOurs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.keytab")
	if err := keytab.Save(p, ktSample()); err != nil {
		t.Fatal(err)
	}
	out := mitkdctest.Klist(t, nil, "-k", "-t", "-e", "-K", "FILE:"+p)
	t.Logf("klist -k:\n%s", out)
	for _, re := range []string{
		`(?m)^\s+3 11/25/26 12:00:00 HTTP/web\.lab\.local@LAB\.LOCAL \(aes256-cts-hmac-sha1-96\)  \(0x(11){32}\)$`,
		`(?m)^\s+3 11/25/26 12:00:00 HTTP/web\.lab\.local@LAB\.LOCAL \(aes128-cts-hmac-sha1-96\)  \(0x(22){16}\)$`,
		`(?m)^\s+300 11/25/26 12:00:00 svc_iispool@LAB\.LOCAL \(aes256-cts-hmac-sha1-96\)  \(0x(33){32}\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("klist -k output does not match %s", re)
		}
	}
}

// TestKeytabMITInterop: a keytab from kadmin ktadd parses, survives our
// re-marshal, and MIT kvno -k accepts our copy (it decrypts a real ticket).
func TestKeytabMITInterop(t *testing.T) {
	k := mitkdctest.ForTest(t, mitkdc.Principal{Name: "bob", Password: "BobPassw0rd!", RequiresPreauth: true}, mitkdc.Principal{Name: "HTTP/web.lab.local", OKAsDelegate: true}, mitkdc.Principal{Name: "MSSQLSvc/sql.lab.local:1433"})
	dir := t.TempDir()
	mitKT := filepath.Join(dir, "mit.keytab")
	if err := k.Keytab(mitKT, "HTTP/web.lab.local"); err != nil {
		t.Fatal(err)
	}
	es, err := keytab.Load(mitKT)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Principal.String() != "HTTP/web.lab.local@LAB.LOCAL" || es[0].KVNO != 1 || es[0].Key.KeyType != 18 || es[1].Key.KeyType != 17 {
		t.Fatalf("%+v", es)
	}
	raw, _ := os.ReadFile(mitKT)
	if b := keytab.Marshal(es); !bytes.Equal(b, raw) {
		t.Logf("re-marshal differs from MIT's file (%d vs %d bytes): MIT always writes the 32-bit kvno", len(b), len(raw))
	}
	// gokrb5 agrees with our parse.
	gk, err := gokeytab.Load(mitKT)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range gk.Entries {
		if e.Key.KeyType != es[i].Key.KeyType || !bytes.Equal(e.Key.KeyValue, es[i].Key.KeyValue) || e.KVNO != es[i].KVNO || !e.Timestamp.Equal(es[i].Timestamp) {
			t.Fatalf("entry %d differs from gokrb5's parse", i)
		}
	}

	ours := filepath.Join(dir, "ours.keytab")
	if err := keytab.Save(ours, es); err != nil {
		t.Fatal(err)
	}
	env := append(k.Env(), "KRB5CCNAME=FILE:"+filepath.Join(dir, "cc"))
	peer.Run(t, env, "BobPassw0rd!\n", "kinit", "bob")
	out := peer.Run(t, env, "", "kvno", "-k", ours, "HTTP/web.lab.local")
	if !strings.Contains(out, "keytab entry valid") {
		t.Fatalf("kvno -k with our keytab: %s", out)
	}
}

// FuzzParseKeytab: no input may panic; whatever parses survives a round trip.
func FuzzParseKeytab(f *testing.F) {
	f.Add(keytab.Marshal(ktSample()))
	f.Add([]byte{5, 1, 21, 0, 0, 0, 2, 0, 1, 0, 'R', 3, 0, 'b', 'o', 'b', 0x10, 0, 0, 0, 7, 17, 0, 2, 0, 0xaa, 0xbb})
	f.Add([]byte{5, 2, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := keytab.Parse(b)
		if err != nil {
			return
		}
		for i := range es {
			if es[i].Timestamp.IsZero() {
				es[i].Timestamp = time.Unix(1, 0).UTC() // MarshalKeytab writes "now" for zero
			}
		}
		es2, err := keytab.Parse(keytab.Marshal(es))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(es2) != len(es) {
			t.Fatalf("%d entries, then %d", len(es), len(es2))
		}
		for i := range es {
			a, b := es[i], es2[i]
			if a.Timestamp.Unix() > 1 && !a.Timestamp.Equal(b.Timestamp) || a.KVNO != b.KVNO || !reflect.DeepEqual(a.Key, b.Key) ||
				!reflect.DeepEqual(a.Principal, b.Principal) {
				t.Fatalf("entry %d: %+v then %+v", i, a, b)
			}
		}
		_, _ = keytab.Gokrb5(es)
	})
}
