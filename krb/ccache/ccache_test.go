package ccache_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/doublehop/doublehop/internal/mitkdc"
	"github.com/doublehop/doublehop/internal/mitkdc/mitkdctest"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/krb/ccache"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// ccFakeTicket is a structurally valid Ticket (RFC 4120 §5.3) with an opaque
// enc-part, enough for klist and gokrb5's Ticket.Unmarshal.
func ccFakeTicket(t testing.TB, sname types.PrincipalName, realm string) []byte {
	t.Helper()
	der, err := kmsg.MarshalTicket(messages.Ticket{TktVNO: 5, Realm: realm, SName: sname,
		EncPart: types.EncryptedData{EType: 18, KVNO: 2, Cipher: bytes.Repeat([]byte{0xab}, 64)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func ccSample(t testing.TB) *ccache.Cache {
	bob := kmsg.Principal{NameType: 1, Components: []string{"bob"}, Realm: "LAB.LOCAL"}
	tgs := kmsg.Principal{NameType: 2, Components: []string{"krbtgt", "LAB.LOCAL"}, Realm: "LAB.LOCAL"}
	http := kmsg.Principal{NameType: 2, Components: []string{"HTTP", "web.lab.local"}, Realm: "LAB.LOCAL"}
	auth := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &ccache.Cache{
		Version:   0x0504,
		KDCOffset: -3*time.Second - 250*time.Microsecond,
		Default:   bob,
		Credentials: []ccache.Credential{
			{
				Client: bob, Server: tgs,
				Key:      types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{1}, 32)},
				AuthTime: auth, StartTime: auth, EndTime: auth.Add(10 * time.Hour), RenewTill: auth.Add(7 * 24 * time.Hour),
				Flags:  0x40e00000, // forwardable renewable initial pre-authent
				Ticket: ccFakeTicket(t, tgs.Name(), "LAB.LOCAL"),
			},
			{
				Client: bob, Server: http,
				Key:      types.EncryptionKey{KeyType: 17, KeyValue: bytes.Repeat([]byte{2}, 16)},
				AuthTime: auth, StartTime: auth.Add(time.Minute), EndTime: auth.Add(10 * time.Hour),
				Flags:     0x40240000, // forwardable pre-authent ok-as-delegate
				Addresses: []types.HostAddress{{AddrType: 2, Address: []byte{127, 0, 0, 1}}},
				AuthData:  types.AuthorizationData{{ADType: 1, ADData: []byte{0x30, 0x00}}},
				Ticket:    ccFakeTicket(t, http.Name(), "LAB.LOCAL"),
			},
			{
				Client: bob,
				Server: kmsg.Principal{Components: []string{"krb5_ccache_conf_data", "pa_type", "krbtgt/LAB.LOCAL@LAB.LOCAL"}, Realm: "X-CACHECONF:"},
				Ticket: []byte("2"),
			},
		},
	}
}

func TestCCacheRoundTrip(t *testing.T) {
	c := ccSample(t)
	b := c.Marshal()
	got, err := ccache.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, c)
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("re-marshal differs")
	}
	if !got.Credentials[2].IsConfig() || got.Credentials[0].IsConfig() {
		t.Fatal("IsConfig")
	}
	if k, p, ok := got.Credentials[2].ConfigKey(); !ok || k != "pa_type" || p != "krbtgt/LAB.LOCAL@LAB.LOCAL" {
		t.Fatalf("ConfigKey = %q %q %v", k, p, ok)
	}
	// Offsets beyond the 32-bit seconds field are clamped, not wrapped.
	c.KDCOffset = 1 << 62
	if got, err := ccache.Parse(c.Marshal()); err != nil || got.KDCOffset != time.Duration(1<<31-1)*time.Second+999999*time.Microsecond {
		t.Fatalf("clamp: %v %v", err, got.KDCOffset)
	}
	// Without a KDC offset the header is empty (length 0).
	c.KDCOffset = 0
	if b := c.Marshal(); !bytes.Equal(b[:4], []byte{5, 4, 0, 0}) {
		t.Fatalf("header % x", b[:4])
	}
}

func TestCCacheTruncatedNeverPanics(t *testing.T) {
	b := ccSample(t).Marshal()
	for n := 0; n < len(b); n++ {
		c, err := ccache.Parse(b[:n])
		if err == nil && n != len(b) {
			// Only a cut exactly between credentials may parse.
			if _, err2 := ccache.Parse(append(b[:n:n], 0)); err2 == nil {
				t.Fatalf("prefix %d+garbage parsed", n)
			}
			if len(c.Credentials) >= 3 {
				t.Fatalf("prefix %d parsed with all credentials", n)
			}
		}
	}
	// Huge counts and lengths are refused, not allocated.
	huge := []byte{5, 4, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}
	if _, err := ccache.Parse(huge); err == nil {
		t.Fatal("huge component count accepted")
	}
	huge = []byte{5, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff}
	if _, err := ccache.Parse(huge); err == nil {
		t.Fatal("huge realm length accepted")
	}
	for _, bad := range [][]byte{nil, {5}, {4, 4}, {5, 5}, {5, 4, 0, 5, 0, 1, 0}} {
		if _, err := ccache.Parse(bad); err == nil {
			t.Fatalf("% x accepted", bad)
		}
	}
}

// ccV3 hand-encodes a version 3 cache (no header, enctype written twice).
func ccV3() []byte {
	var b bytes.Buffer
	u16 := func(v uint16) { b.Write([]byte{byte(v >> 8), byte(v)}) }
	u32 := func(v uint32) { b.Write([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) }
	data := func(s string) { u32(uint32(len(s))); b.WriteString(s) }
	princ := func(nt uint32, realm string, comps ...string) {
		u32(nt)
		u32(uint32(len(comps)))
		data(realm)
		for _, c := range comps {
			data(c)
		}
	}
	u16(0x0503)
	princ(1, "OLD.REALM", "alice")
	princ(1, "OLD.REALM", "alice")
	princ(2, "OLD.REALM", "krbtgt", "OLD.REALM")
	u16(17)
	u16(17)
	data("0123456789abcdef")
	u32(1000)
	u32(1000)
	u32(2000)
	u32(0)
	b.WriteByte(0)
	u32(0x40000000)
	u32(0)
	u32(0)
	data("tkt")
	data("")
	return b.Bytes()
}

func TestCCacheV3(t *testing.T) {
	c, err := ccache.Parse(ccV3())
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 0x0503 || c.Default.String() != "alice@OLD.REALM" || len(c.Credentials) != 1 {
		t.Fatalf("%+v", c)
	}
	cr := c.Credentials[0]
	if cr.Key.KeyType != 17 || string(cr.Key.KeyValue) != "0123456789abcdef" || cr.EndTime.Unix() != 2000 || !cr.RenewTill.IsZero() || cr.Flags != 0x40000000 {
		t.Fatalf("%+v", cr)
	}
	// Re-marshalled as version 4.
	c2, err := ccache.Parse(c.Marshal())
	if err != nil || c2.Version != 0x0504 || !reflect.DeepEqual(c2.Credentials, c.Credentials) {
		t.Fatalf("v3→v4: %v %+v", err, c2)
	}
}

func TestFlagsConversion(t *testing.T) {
	f := kmsg.NewFlags(kmsg.FlagForwardable, kmsg.FlagRenewable, kmsg.FlagPreAuthent)
	if got := ccache.FlagsFromBitString(f); got != 0x40a00000 {
		t.Fatalf("flags %#x", got)
	}
	if bs := ccache.BitStringFromFlags(0x40a00000); !kmsg.HasFlag(bs, kmsg.FlagForwardable) || !kmsg.HasFlag(bs, kmsg.FlagPreAuthent) || kmsg.HasFlag(bs, kmsg.FlagProxiable) || bs.BitLength != 32 {
		t.Fatalf("%+v", bs)
	}
	short := ccache.BitStringFromFlags(0xffffffff)
	short.BitLength = 9
	if got := ccache.FlagsFromBitString(short); got != 0xff800000 {
		t.Fatalf("short %#x", got)
	}
}

func TestCCacheAddFind(t *testing.T) {
	c := ccSample(t)
	http := kmsg.Principal{NameType: 1, Components: []string{"HTTP", "web.lab.local"}, Realm: "lab.local"}
	got, ok := c.Find(http)
	if !ok || got.Key.KeyType != 17 {
		t.Fatalf("Find: %v %+v", ok, got)
	}
	if _, ok := c.Find(kmsg.Principal{Components: []string{"http", "web.lab.local"}, Realm: "LAB.LOCAL"}); ok {
		t.Fatal("components must match exactly")
	}
	if _, ok := c.Find(c.Credentials[2].Server); ok {
		t.Fatal("config entry found")
	}
	// A second, newer ticket for a different client: Find prefers it.
	newer := c.Credentials[1]
	newer.Client = kmsg.Principal{Components: []string{"alice"}, Realm: "LAB.LOCAL"}
	newer.StartTime = newer.StartTime.Add(time.Hour)
	newer.Key.KeyType = 18
	c.Add(newer)
	if len(c.Credentials) != 4 {
		t.Fatalf("Add appended? %d", len(c.Credentials))
	}
	if got, _ := c.Find(http); got.Key.KeyType != 18 {
		t.Fatal("Find did not prefer the newest")
	}
	// Same client+server: replaced in place.
	repl := c.Credentials[1]
	repl.Flags = 0
	c.Add(repl)
	if len(c.Credentials) != 4 || c.Credentials[1].Flags != 0 {
		t.Fatal("Add did not replace")
	}
}

func TestCCacheKRBCredConversion(t *testing.T) {
	c := ccSample(t)
	cr, err := c.Credentials[1].Credential()
	if err != nil {
		t.Fatal(err)
	}
	if cr.Server() != "HTTP/web.lab.local@LAB.LOCAL" || !kmsg.HasFlag(cr.Info.Flags, kmsg.FlagOKAsDelegate) {
		t.Fatalf("%v", cr)
	}
	back, err := ccache.CredentialFrom(cr)
	if err != nil {
		t.Fatal(err)
	}
	want := c.Credentials[1]
	want.AuthData = nil // KrbCredInfo has no authorization data
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("got %+v\nwant %+v", back, want)
	}
	if _, err := c.Credentials[2].Credential(); err == nil {
		t.Fatal("config entry converted")
	}
}

func TestCCachePaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cc")
	c := ccSample(t)
	if err := c.Save("FILE:" + p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v %v", err, fi.Mode())
	}
	for _, name := range []string{p, "FILE:" + p} {
		got, err := ccache.Load(name)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("LoadCCache(%s): %v", name, err)
		}
	}
	for _, name := range []string{"KEYRING:persistent:0", "KCM:0", "DIR:/tmp/x", "MEMORY:x", "API:x"} {
		_, err := ccache.Load(name)
		if err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Fatalf("LoadCCache(%s): %v", name, err)
		}
		if err := c.Save(name); err == nil {
			t.Fatalf("Save(%s) accepted", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
	t.Setenv("KRB5CCNAME", "FILE:"+p)
	if got := ccache.DefaultPath(); got != p {
		t.Fatalf("DefaultCCachePath = %q", got)
	}
	t.Setenv("KRB5CCNAME", "")
	if got := ccache.DefaultPath(); !strings.HasPrefix(got, "/tmp/krb5cc_") {
		t.Fatalf("DefaultCCachePath = %q", got)
	}
}

func TestPrincipalString(t *testing.T) {
	p := kmsg.Principal{Components: []string{"MSSQLSvc", "sql.lab.local:1433"}, Realm: "LAB.LOCAL"}
	if p.String() != "MSSQLSvc/sql.lab.local:1433@LAB.LOCAL" {
		t.Fatal(p.String())
	}
	p = kmsg.Principal{Components: []string{"a/b", "c@d"}, Realm: "R"}
	if p.String() != `a\/b/c\@d@R` {
		t.Fatal(p.String())
	}
}

func TestCCacheMITKlistReadsOurs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cc")
	c := ccSample(t)
	c.Credentials[0].EndTime = time.Now().Add(time.Hour).Truncate(time.Second) // klist -s/-f prints expired ones too, but keep it live
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	out := mitkdctest.Klist(t, nil, "-c", "FILE:"+p, "-e", "-f")
	for _, want := range []string{
		"Default principal: bob@LAB.LOCAL",
		"krbtgt/LAB.LOCAL@LAB.LOCAL",
		"Flags: FRIA",
		"Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96",
		"HTTP/web.lab.local@LAB.LOCAL",
		"Flags: FAO",
		"Etype (skey, tkt): aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("klist output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "X-CACHECONF") {
		t.Errorf("klist shows the config entry:\n%s", out)
	}
	t.Logf("klist:\n%s", out)
}

// ccMITRealm starts an MIT KDC with bob, HTTP and MSSQL principals.
func ccMITRealm(t *testing.T) *mitkdc.KDC {
	t.Helper()
	return mitkdctest.ForTest(t,
		mitkdc.Principal{Name: "bob", Password: "BobPassw0rd!", RequiresPreauth: true},
		mitkdc.Principal{Name: "HTTP/web.lab.local", OKAsDelegate: true},
		mitkdc.Principal{Name: "MSSQLSvc/sql.lab.local:1433"})
}

func TestCCacheMITKinitInterop(t *testing.T) {
	k := ccMITRealm(t)
	dir := t.TempDir()
	mitPath := filepath.Join(dir, "mit.cc")
	env := append(k.Env(), "KRB5CCNAME=FILE:"+mitPath)
	peer.Run(t, env, "BobPassw0rd!\n", "kinit", "bob")
	peer.Run(t, env, "", "kvno", "HTTP/web.lab.local")

	raw, err := os.ReadFile(mitPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ccache.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 0x0504 || c.Default.String() != "bob@LAB.LOCAL" {
		t.Fatalf("version %#x default %s", c.Version, c.Default)
	}
	var configs []string
	for _, cr := range c.Credentials {
		if key, _, ok := cr.ConfigKey(); ok {
			configs = append(configs, key)
		}
	}
	t.Logf("MIT cache: %d entries, config keys %v, KDC offset %v", len(c.Credentials), configs, c.KDCOffset)
	if len(configs) == 0 {
		t.Error("no X-CACHECONF entries in the MIT kinit cache")
	}
	tgt, ok := c.Find(kmsg.Principal{Components: []string{"krbtgt", "LAB.LOCAL"}, Realm: "LAB.LOCAL"})
	if !ok || tgt.Flags&0x40000000 == 0 || tgt.Key.KeyType != 18 {
		t.Fatalf("TGT: %v %+v", ok, tgt)
	}
	http, ok := c.Find(kmsg.Principal{Components: []string{"HTTP", "web.lab.local"}, Realm: "lab.local"})
	if !ok || !kmsg.HasFlag(ccache.BitStringFromFlags(http.Flags), kmsg.FlagOKAsDelegate) {
		t.Fatalf("HTTP ticket: %v %+v", ok, http)
	}
	if cr, err := http.Credential(); err != nil || cr.Ticket.EncPart.EType != 18 {
		t.Fatalf("HTTP ticket does not decode: %v", err)
	}

	// Re-written by us, MIT klist shows the same thing.
	ourPath := filepath.Join(dir, "ours.cc")
	if err := c.Save(ourPath); err != nil {
		t.Fatal(err)
	}
	if b := c.Marshal(); !bytes.Equal(b, raw) {
		t.Logf("re-marshal is not byte-identical to MIT's file (%d vs %d bytes)", len(b), len(raw))
	}
	a := mitkdctest.Klist(t, env, "-c", "FILE:"+mitPath, "-e", "-f")
	b := mitkdctest.Klist(t, env, "-c", "FILE:"+ourPath, "-e", "-f")
	if strings.ReplaceAll(a, mitPath, "X") != strings.ReplaceAll(b, ourPath, "X") {
		t.Fatalf("klist differs:\nMIT:\n%s\nours:\n%s", a, b)
	}

	// MIT kvno uses our cache's TGT for a new TGS exchange and stores the
	// ticket in it; we read MIT's addition back.
	ourEnv := append(k.Env(), "KRB5CCNAME=FILE:"+ourPath)
	peer.Run(t, ourEnv, "", "kvno", "MSSQLSvc/sql.lab.local:1433")
	c2, err := ccache.Load("FILE:" + ourPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c2.Find(kmsg.Principal{Components: []string{"MSSQLSvc", "sql.lab.local:1433"}, Realm: "LAB.LOCAL"}); !ok {
		t.Fatal("MIT kvno's ticket not found in our cache")
	}

	// gokrb5 client from our converted cache gets a fresh service ticket.
	g, err := c.ToGokrb5()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.NewFromCCache(g, cfg, client.DisablePAFXFAST(true))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Destroy()
	tkt, _, err := cl.GetServiceTicket("MSSQLSvc/sql.lab.local:1433")
	if err != nil {
		t.Fatalf("gokrb5 TGS with our TGT: %v\nKDC log: %s", err, k.Log(1024))
	}
	if tkt.SName.PrincipalNameString() != "MSSQLSvc/sql.lab.local:1433" {
		t.Fatalf("ticket for %s", tkt.SName.PrincipalNameString())
	}
}

// FuzzParseCCache: no input may panic, and whatever parses must survive a
// Marshal/Parse round trip unchanged (apart from the version, always 4).
func FuzzParseCCache(f *testing.F) {
	f.Add(ccSample(f).Marshal())
	f.Add(ccV3())
	c := ccSample(f)
	c.KDCOffset = 0
	f.Add(c.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ccache.Parse(b)
		if err != nil {
			return
		}
		c2, err := ccache.Parse(c.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		c.Version = 0x0504
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", c, c2)
		}
		for _, cr := range c.Credentials {
			_, _ = cr.Credential()
			_ = cr.Server.String()
		}
		_, _ = c.ToGokrb5()
	})
}
