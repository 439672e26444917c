package kmsg

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// mutate returns a damaged copy of b: a changed byte, a cut, an inserted or
// removed byte, or a length byte nudged.
func mutate(r *rand.Rand, b []byte) []byte {
	m := bytes.Clone(b)
	if len(m) == 0 {
		return []byte{byte(r.UintN(256))}
	}
	for k := 1 + r.IntN(3); k > 0; k-- {
		i := r.IntN(len(m))
		switch r.IntN(6) {
		case 0:
			m[i] = byte(r.UintN(256))
		case 1:
			m[i] ^= 1 << r.IntN(8)
		case 2:
			m = m[:i]
		case 3:
			m = append(m[:i], append([]byte{byte(r.UintN(256))}, m[i:]...)...)
		case 4:
			m = append(m[:i], m[i+1:]...)
		case 5:
			m[i] += byte(r.IntN(5)) - 2
		}
		if len(m) == 0 {
			break
		}
	}
	return m
}

func goforkEncTicketPartDecode(b []byte) (messages.EncTicketPart, error) {
	var t messages.EncTicketPart
	err := SafeUnmarshal(func() error { return t.Unmarshal(b) })
	return t, err
}

// When the fast EncTicketPart decoder accepts bytes, gofork decodes them to
// the same value.
func TestFastEncTicketPartMatchesGofork(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	g := gen{r}
	fast, n := 0, 2000
	for i := 0; i < n; i++ {
		etp := g.encTicketPart()
		b, err := MarshalEncTicketPart(etp)
		if err != nil {
			continue
		}
		for j := 0; j < 6; j++ {
			in := b
			if j > 0 {
				in = mutate(r, b)
			}
			got, ok := fastEncTicketPart(in)
			if !ok {
				continue
			}
			if j == 0 {
				fast++
			}
			want, err := goforkEncTicketPartDecode(in)
			if err != nil {
				t.Fatalf("case %d/%d: fast decoder accepted what gofork rejects (%v): %x", i, j, err, in)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("case %d/%d: decoders differ:\n fast   %+v\n gofork %+v", i, j, got, want)
			}
		}
	}
	if fast < n/2 {
		t.Fatalf("the fast path took only %d of %d canonical encodings", fast, n)
	}
}

func TestFastAuthorizationDataMatchesGofork(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	g := gen{r}
	for i := 0; i < 2000; i++ {
		b := MarshalAuthorizationData(g.ad())
		for j := 0; j < 6; j++ {
			in := b
			if j > 0 {
				in = mutate(r, b)
			}
			got, ok := FastAuthorizationData(in)
			var want types.AuthorizationData
			var rest []byte
			err := SafeUnmarshal(func() (err error) { rest, err = asn1.Unmarshal(in, &want); return err })
			if j == 0 && !ok {
				t.Fatalf("case %d: canonical AuthorizationData not taken: %x", i, in)
			}
			if !ok {
				continue
			}
			if err != nil || len(rest) != 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("case %d/%d: fast %+v, gofork %+v (%v, %d left)", i, j, got, want, err, len(rest))
			}
		}
	}
}

// randomKDCReq builds an AS-REQ or TGS-REQ with gofork-encoded parts.
func randomKDCReq(t *testing.T, g gen, i int) []byte {
	body := messages.KDCReqBody{KDCOptions: g.flags(), Realm: g.str(), Till: g.time(), Nonce: int(g.int32()), EType: []int32{}}
	if body.KDCOptions.Bytes == nil || g.r.IntN(3) == 0 {
		body.KDCOptions = NewFlags(g.r.IntN(32))
	}
	if g.r.IntN(3) > 0 {
		body.CName = g.name()
	}
	if g.r.IntN(4) > 0 {
		body.SName = g.name()
	}
	if g.r.IntN(2) == 0 {
		body.From = g.time()
	}
	if g.r.IntN(2) == 0 {
		body.RTime = g.time()
	}
	for k := g.r.IntN(5); k > 0; k-- {
		body.EType = append(body.EType, g.int32())
	}
	body.Addresses = g.addrs()
	if g.r.IntN(4) == 0 {
		body.EncAuthData = g.encData()
	}
	if g.r.IntN(8) == 0 {
		body.AdditionalTickets = []messages.Ticket{g.ticket()}
	}
	bb, err := body.Marshal()
	if err != nil {
		return nil
	}
	app, mt := tagASReq, MsgASReq
	if i%2 == 1 {
		app, mt = tagTGSReq, MsgTGSReq
	}
	if g.r.IntN(10) == 0 {
		mt = int(g.int32())
	}
	pvno := 5
	if g.r.IntN(10) == 0 {
		pvno = int(g.int32())
	}
	parts := [][]byte{der.Ctx(1, der.Int(int64(pvno))), der.Ctx(2, der.Int(int64(mt)))}
	if pa := g.padata(); pa != nil {
		pab, _ := asn1.Marshal(pa)
		parts = append(parts, der.Ctx(3, pab))
	}
	parts = append(parts, der.Ctx(4, bb))
	return der.App(app, der.Seq(parts...))
}

// gofork's structure errors print a *int field address.
var goforkPtr = regexp.MustCompile(`tag:0x[0-9a-f]+`)

func sameParse(t *testing.T, what string, in []byte) bool {
	t.Helper()
	got, err1 := ParseKDCReq(in)
	if len(in) < 2 || (in[0] != 0x6a && in[0] != 0x6c) {
		// Not an AS-REQ or TGS-REQ: refused before any decoder runs.
		if err1 == nil || got != nil {
			t.Fatalf("%s: ParseKDCReq accepted %x (first byte not 0x6a/0x6c)", what, in)
		}
		return false
	}
	tag := tagASReq
	if in[0] == 0x6c {
		tag = tagTGSReq
	}
	want, err2 := parseKDCReqGofork(in, tag)
	if (err1 == nil) != (err2 == nil) || (err1 != nil && goforkPtr.ReplaceAllString(err1.Error(), "") != goforkPtr.ReplaceAllString(err2.Error(), "")) {
		t.Fatalf("%s: ParseKDCReq error %v, gofork path %v: %x", what, err1, err2, in)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: ParseKDCReq differs from the gofork path:\n ours   %+v\n gofork %+v", what, got, want)
	}
	return err1 == nil
}

// ParseKDCReq returns exactly what the gofork path returns: same requests,
// same errors, on real, random and damaged requests.
func TestParseKDCReqMatchesGofork(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	g := gen{r}
	var reqs [][]byte
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{7}, 32)}
	pa, _ := NewPAEncTimestamp(key, 1, time.Now())
	as, _, _ := ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}},
		Options: []int{FlagForwardable, FlagRenewable}, RTime: time.Now().Add(time.Hour), PAData: []types.PAData{pa}}.Marshal()
	reqs = append(reqs, as)
	tgt := messages.Ticket{TktVNO: 5, Realm: "LAB.LOCAL", SName: types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "LAB.LOCAL"}},
		EncPart: types.EncryptedData{EType: 18, KVNO: 2, Cipher: bytes.Repeat([]byte{1}, 900)}}
	for _, sub := range []bool{false, true} {
		tgs, _, _, _, err := TGSRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, ClientRealm: "LAB.LOCAL",
			TGT: tgt, SessionKey: key, Service: ParsePrincipalName("HTTP/web.lab.local"), UseSubkey: sub}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, tgs)
	}
	proxy, _, _, _, _ := TGSRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"svc"}}, ClientRealm: "LAB.LOCAL",
		TGT: tgt, SessionKey: key, Service: ParsePrincipalName("MSSQLSvc/sql.lab.local:1433"), Options: []int{OptCNameInAddlTkt},
		AdditionalTickets: []messages.Ticket{tgt}}.Marshal()
	reqs = append(reqs, proxy)
	for i := 0; i < 3000; i++ {
		if b := randomKDCReq(t, g, i); b != nil {
			reqs = append(reqs, b)
		}
	}
	fast := 0
	for i, b := range reqs {
		if sameParse(t, "request", b) {
			tag := tagASReq
			if b[0] == 0x6c {
				tag = tagTGSReq
			}
			if _, _, _, ok := fastKDCReq(b, tag); ok {
				fast++
			}
		}
		if i < 4 {
			// AS-REQ, TGS-REQs with and without a subkey, and S4U2Proxy's
			// (additional tickets): all four real shapes take the fast path.
			if _, _, _, ok := fastKDCReq(b, []int{tagASReq, tagTGSReq, tagTGSReq, tagTGSReq}[i]); !ok {
				t.Fatalf("real request %d: fast path %v", i, ok)
			}
		}
		for j := 0; j < 8; j++ {
			sameParse(t, "damaged request", mutate(r, b))
		}
	}
	if fast < len(reqs)/3 {
		t.Fatalf("the fast path took only %d of %d requests", fast, len(reqs))
	}
}

func FuzzParseKDCReqMatchesGofork(f *testing.F) {
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{7}, 32)}
	pa, _ := NewPAEncTimestamp(key, 1, time.Now())
	as, _, _ := ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, PAData: []types.PAData{pa}}.Marshal()
	f.Add(as)
	f.Fuzz(func(t *testing.T, b []byte) {
		sameParse(t, "fuzz", b)
		// The same bytes as an AS-REQ and as a TGS-REQ, so that every input
		// reaches both decoders.
		if len(b) >= 2 {
			for _, id := range []byte{0x6a, 0x6c} {
				c := append([]byte{id}, b[1:]...)
				sameParse(t, "fuzz as "+fmt.Sprintf("%#x", id), c)
			}
		}
	})
}

func BenchmarkParseKDCReqFast(b *testing.B) {
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{7}, 32)}
	pa, _ := NewPAEncTimestamp(key, 1, time.Now())
	as, _, _ := ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, PAData: []types.PAData{pa}}.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		ParseKDCReq(as)
	}
}

func BenchmarkParseKDCReqGofork(b *testing.B) {
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{7}, 32)}
	pa, _ := NewPAEncTimestamp(key, 1, time.Now())
	as, _, _ := ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, PAData: []types.PAData{pa}}.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		parseKDCReqGofork(as, tagASReq)
	}
}

func goforkKDCRepDecode(b []byte) (messages.KDCRepFields, error) {
	if len(b) > 0 && b[0] == 0x6d {
		var r messages.TGSRep
		err := SafeUnmarshal(func() error { return r.Unmarshal(b) })
		return r.KDCRepFields, err
	}
	var r messages.ASRep
	err := SafeUnmarshal(func() error { return r.Unmarshal(b) })
	return r.KDCRepFields, err
}

// The fast KDC-REP and EncKDCRepPart decoders agree with gofork whenever
// they accept, on canonical and damaged replies.
func TestFastKDCRepMatchesGofork(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	g := gen{r}
	fastRep, fastPart, n := 0, 0, 2000
	for i := 0; i < n; i++ {
		mt, app := MsgASRep, tagASRep
		if i%2 == 1 {
			mt, app = MsgTGSRep, tagTGSRep
		}
		f := messages.KDCRepFields{PVNO: int(g.int32()), MsgType: mt, PAData: g.padata(), CRealm: g.str(), CName: g.name(), Ticket: g.ticket(), EncPart: g.encData()}
		if g.r.IntN(10) == 0 {
			f.MsgType = int(g.int32())
		}
		b, err := MarshalKDCRep(messages.KDCRepFields{PVNO: f.PVNO, MsgType: mt, PAData: f.PAData, CRealm: f.CRealm, CName: f.CName, Ticket: f.Ticket, EncPart: f.EncPart})
		if err != nil {
			t.Fatal(err)
		}
		if f.MsgType != mt { // a wrong msg-type inside the right application tag
			b = bytes.Replace(b, []byte{0xa1, 0x03, 0x02, 0x01, byte(mt)}, der.Ctx(1, der.Int(int64(f.MsgType))), 1)
		}
		p := g.encKDCRepPart()
		pb, err := MarshalEncKDCRepPart(p, i%3 == 0)
		if err != nil {
			continue
		}
		for j := 0; j < 6; j++ {
			in, pin := b, pb
			if j > 0 {
				in, pin = mutate(r, b), mutate(r, pb)
			}
			if got, ok := fastKDCRep(in, app, mt); ok {
				if j == 0 {
					fastRep++
				}
				want, err := goforkKDCRepDecode(in)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("KDC-REP %d/%d: fast %+v, gofork %+v (%v)", i, j, got, want, err)
				}
			}
			if got, ok := fastEncKDCRepPart(pin); ok {
				if j == 0 {
					fastPart++
				}
				var want messages.EncKDCRepPart
				err := SafeUnmarshal(func() error { return want.Unmarshal(pin) })
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("EncKDCRepPart %d/%d: fast %+v, gofork %+v (%v)", i, j, got, want, err)
				}
			}
		}
	}
	if fastRep < n/2 || fastPart < n/3 {
		t.Fatalf("the fast path took %d replies and %d enc-parts of %d", fastRep, fastPart, n)
	}
}

// A round trip through the client and the encoders: what DecodeKDCRep
// returns equals the gofork decode of the same reply.
func TestDecodeKDCRepRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	g := gen{r}
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{9}, 32)}
	for i := 0; i < 500; i++ {
		p := g.encKDCRepPart()
		p.Flags = NewFlags(r.IntN(32))
		pb, err := MarshalEncKDCRepPart(p, i%2 == 1)
		if err != nil {
			continue
		}
		ed, _ := kcrypto.Encrypt(pb, key, kcrypto.UsageASRepEncPart, 0)
		mt := []int{MsgASRep, MsgTGSRep}[i%2]
		rep, _ := MarshalKDCRep(messages.KDCRepFields{PVNO: 5, MsgType: mt, PAData: g.padata(), CRealm: g.str(), CName: g.name(), Ticket: g.ticket(), EncPart: ed})
		got, err := DecodeKDCRep(rep, key, kcrypto.UsageASRepEncPart, p.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		f, err := goforkKDCRepDecode(rep)
		if err != nil {
			t.Fatal(err)
		}
		var want messages.EncKDCRepPart
		if err := want.Unmarshal(pb); err != nil {
			t.Fatal(err)
		}
		want.Flags = CopyFlags(want.Flags)
		if !reflect.DeepEqual(got, &KDCReply{Ticket: CleanTicket(f.Ticket), Part: want, CName: f.CName, CRealm: f.CRealm, PAData: f.PAData}) {
			t.Fatalf("reply %d differs", i)
		}
	}
}

// checkFast runs a fast decoder and the gokrb5 one on canonical and damaged
// encodings: when the fast one accepts, gokrb5 must return the same value.
func checkFast[T any](t *testing.T, what string, r *rand.Rand, enc []byte, fast func([]byte) (T, bool), slow func([]byte) (T, error)) bool {
	t.Helper()
	took := false
	for j := 0; j < 6; j++ {
		in := enc
		if j > 0 {
			in = mutate(r, enc)
		}
		got, ok := fast(in)
		if !ok {
			continue
		}
		took = took || j == 0
		var want T
		var err error
		if e := SafeUnmarshal(func() error { want, err = slow(in); return nil }); e != nil {
			err = e
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s (%d): fast %+v, gokrb5 %+v (%v)", what, j, got, want, err)
		}
	}
	return took
}

func TestExportedFastDecodersMatchGokrb5(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	g := gen{r}
	var took [4]int
	n := 2000
	for i := 0; i < n; i++ {
		ap := messages.APReq{PVNO: int(g.int32()), MsgType: MsgAPReq, APOptions: g.flags(), Ticket: g.ticket(), EncryptedAuthenticator: g.encData()}
		if r.IntN(10) == 0 {
			ap.MsgType = int(g.int32())
		}
		if ap.APOptions.Bytes == nil {
			ap.APOptions = NewFlags()
		}
		if b, err := ap.Marshal(); err == nil && checkFast(t, "AP-REQ", r, b, FastAPReq, func(b []byte) (messages.APReq, error) {
			var a messages.APReq
			return a, a.Unmarshal(b)
		}) {
			took[0]++
		}
		a := g.authenticator()
		if b, err := a.Marshal(); err == nil && checkFast(t, "Authenticator", r, b, FastAuthenticator, func(b []byte) (types.Authenticator, error) {
			var a types.Authenticator
			return a, a.Unmarshal(b)
		}) {
			took[1]++
		}
		if checkFast(t, "EncryptedData", r, MarshalEncryptedData(g.encData()), FastEncryptedData, func(b []byte) (types.EncryptedData, error) {
			var ed types.EncryptedData
			return ed, ed.Unmarshal(b)
		}) {
			took[2]++
		}
		ts := types.PAEncTSEnc{PATimestamp: g.time(), PAUSec: int(g.int32())}
		if b, err := asn1.Marshal(ts); err == nil && checkFast(t, "PA-ENC-TS-ENC", r, b, FastPAEncTSEnc, func(b []byte) (types.PAEncTSEnc, error) {
			var ts types.PAEncTSEnc
			return ts, ts.Unmarshal(b)
		}) {
			took[3]++
		}
		var info types.ETypeInfo2
		for k := r.IntN(4); k > 0; k-- {
			e := types.ETypeInfo2Entry{EType: g.int32()}
			if r.IntN(2) == 0 {
				e.Salt = g.str()
			}
			switch r.IntN(3) {
			case 0:
				e.S2KParams = g.bytes(8)
			case 1:
				e.S2KParams = []byte{}
			}
			info = append(info, e)
		}
		if r.IntN(5) == 0 {
			info = types.ETypeInfo2{}
		}
		if want, err := asn1.Marshal(info); err != nil || !bytes.Equal(MarshalETypeInfo2(info), want) {
			t.Fatalf("ETYPE-INFO2 %d: ours %x, gofork %x (%v)", i, MarshalETypeInfo2(info), want, err)
		}
	}
	for k, v := range took {
		if v < n/3 {
			t.Fatalf("decoder %d took only %d of %d canonical encodings", k, v, n)
		}
	}
}

// The PA-TGS-REQ our client sends and the timestamp it encrypts take the fast paths.
func TestFastDecodersTakeClientMessages(t *testing.T) {
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{7}, 32)}
	tgt := messages.Ticket{TktVNO: 5, Realm: "LAB.LOCAL", SName: types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "LAB.LOCAL"}},
		EncPart: types.EncryptedData{EType: 18, KVNO: 2, Cipher: bytes.Repeat([]byte{1}, 900)}}
	req := TGSRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, ClientRealm: "LAB.LOCAL",
		TGT: tgt, SessionKey: key, Service: ParsePrincipalName("HTTP/web.lab.local"), UseSubkey: true}
	b, _, _, _, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseKDCReq(b)
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := r.PA(PATGSReq)
	ap, ok := FastAPReq(pa.PADataValue)
	if !ok {
		t.Fatal("AP-REQ not taken")
	}
	plain, err := kcrypto.Decrypt(ap.EncryptedAuthenticator, key, kcrypto.UsageTGSReqAuthenticator)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := FastAuthenticator(plain); !ok || a.SubKey.KeyType != kcrypto.ETypeAES256SHA1 || a.Cksum.CksumType != kcrypto.CksumSHA1AES256 {
		t.Fatalf("authenticator not taken: %v %+v", ok, a)
	}
	ts, _ := NewPAEncTimestamp(key, 1, time.Now())
	ed, ok := FastEncryptedData(ts.PADataValue)
	if !ok {
		t.Fatal("PA-ENC-TIMESTAMP not taken")
	}
	plain, _ = kcrypto.Decrypt(ed, key, kcrypto.UsageASReqTimestamp)
	if _, ok := FastPAEncTSEnc(plain); !ok {
		t.Fatal("PA-ENC-TS-ENC not taken")
	}
}
