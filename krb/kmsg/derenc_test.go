package kmsg

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// gofork's encodings, the reference the hand-written encoders must equal.
func goforkEncTicketPart(t testing.TB, etp messages.EncTicketPart) []byte {
	b, err := asn1.Marshal(etp)
	if err != nil {
		t.Fatal(err)
	}
	return asn1tools.AddASNAppTag(b, tagEncTicketPart)
}

func goforkEncKDCRepPart(t testing.TB, p messages.EncKDCRepPart, tag int) []byte {
	b, err := asn1.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return asn1tools.AddASNAppTag(b, tag)
}

func goforkKDCRep(t testing.TB, f messages.KDCRepFields) []byte {
	var b []byte
	var err error
	if f.MsgType == MsgASRep {
		r := messages.ASRep{KDCRepFields: f}
		b, err = r.Marshal()
	} else {
		r := messages.TGSRep{KDCRepFields: f}
		b, err = r.Marshal()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type gen struct{ r *rand.Rand }

func (g gen) bytes(max int) []byte {
	n := g.size(max)
	if n == 0 && g.r.IntN(2) == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

// size picks lengths around the DER length-form boundaries.
func (g gen) size(max int) int {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1:
		return min(max, 120+g.r.IntN(16)) // around 127/128
	case 2:
		return min(max, 250+g.r.IntN(12)) // around 255/256
	case 3:
		return min(max, 65530+g.r.IntN(12))
	}
	return g.r.IntN(min(max, 600) + 1)
}

func (g gen) int32() int32 {
	switch g.r.IntN(5) {
	case 0:
		return 0
	case 1:
		return int32(g.r.IntN(300)) - 150
	case 2:
		return []int32{127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 1<<31 - 1, -1 << 31}[g.r.IntN(12)]
	}
	return int32(g.r.Uint32())
}

func (g gen) str() string {
	n := g.r.IntN(5)
	if g.r.IntN(8) == 0 {
		n = 130 + g.r.IntN(200)
	}
	var sb strings.Builder
	for i := 0; i < n; i++ {
		switch g.r.IntN(10) {
		case 0:
			sb.WriteString("é") // not PrintableString: GeneralString takes raw bytes
		case 1:
			sb.WriteByte(byte(g.r.UintN(256))) // not even UTF-8
		default:
			sb.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./@$-_ "[g.r.IntN(69)])
		}
	}
	return sb.String()
}

func (g gen) name() types.PrincipalName {
	var ns []string
	k := g.r.IntN(4)
	if g.r.IntN(20) == 0 {
		k = 40
	}
	for i := 0; i < k; i++ {
		ns = append(ns, g.str())
	}
	if k == 0 && g.r.IntN(2) == 0 {
		ns = []string{}
	}
	return types.PrincipalName{NameType: g.int32(), NameString: ns}
}

var zones = []*time.Location{time.UTC, time.FixedZone("p", 5*3600+30*60), time.FixedZone("m", -8*3600), time.FixedZone("s", 30), time.FixedZone("n", -59), time.Local}

func (g gen) time() time.Time {
	switch g.r.IntN(8) {
	case 0:
		return time.Time{}
	case 1:
		return time.Now() // monotonic reading, nanoseconds
	case 2:
		return time.Date(1+g.r.IntN(9999), time.Month(1+g.r.IntN(12)), 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.r.IntN(1e9), zones[g.r.IntN(len(zones))])
	}
	return KerberosTime(time.Unix(int64(g.r.Uint32()), 0).Add(time.Duration(g.r.IntN(1000)) * time.Hour * 24 * 30))
}

func (g gen) flags() asn1.BitString {
	switch g.r.IntN(6) {
	case 0:
		return asn1.BitString{}
	case 1:
		b := g.bytes(6)
		return asn1.BitString{Bytes: b, BitLength: len(b)*8 - g.r.IntN(8)}
	}
	f := NewFlags()
	for i := 0; i < 5; i++ {
		SetFlag(&f, g.r.IntN(32))
	}
	return f
}

func (g gen) key() types.EncryptionKey {
	return types.EncryptionKey{KeyType: g.int32(), KeyValue: g.bytes(64)}
}

func (g gen) addrs() types.HostAddresses {
	switch g.r.IntN(3) {
	case 0:
		return nil
	case 1:
		return types.HostAddresses{}
	}
	var a types.HostAddresses
	for i := g.r.IntN(4); i >= 0; i-- {
		a = append(a, types.HostAddress{AddrType: g.int32(), Address: g.bytes(20)})
	}
	return a
}

func (g gen) ad() types.AuthorizationData {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return types.AuthorizationData{}
	case 2: // a signed PAC, as the KDC writes it
		ad, _ := PACAuthorizationData(g.bytes(2000))
		return ad
	}
	var ad types.AuthorizationData
	for i := g.r.IntN(4); i >= 0; i-- {
		ad = append(ad, types.AuthorizationDataEntry{ADType: g.int32(), ADData: g.bytes(1 << 17)})
	}
	return ad
}

func (g gen) padata() types.PADataSequence {
	switch g.r.IntN(3) {
	case 0:
		return nil
	case 1:
		return types.PADataSequence{}
	}
	var pa types.PADataSequence
	for i := g.r.IntN(4); i >= 0; i-- {
		pa = append(pa, types.PAData{PADataType: g.int32(), PADataValue: g.bytes(300)})
	}
	return pa
}

func (g gen) encTicketPart() messages.EncTicketPart {
	return messages.EncTicketPart{Flags: g.flags(), Key: g.key(), CRealm: g.str(), CName: g.name(),
		Transited: messages.TransitedEncoding{TRType: g.int32(), Contents: g.bytes(300)},
		AuthTime:  g.time(), StartTime: g.time(), EndTime: g.time(), RenewTill: g.time(), CAddr: g.addrs(), AuthorizationData: g.ad()}
}

func (g gen) encKDCRepPart() messages.EncKDCRepPart {
	var lr []messages.LastReq
	for i := g.r.IntN(4) - 1; i >= 0; i-- {
		lr = append(lr, messages.LastReq{LRType: g.int32(), LRValue: g.time()})
	}
	if lr == nil && g.r.IntN(2) == 0 {
		lr = []messages.LastReq{}
	}
	var ca []types.HostAddress = g.addrs()
	return messages.EncKDCRepPart{Key: g.key(), LastReqs: lr, Nonce: int(g.int32()), KeyExpiration: g.time(), Flags: g.flags(),
		AuthTime: g.time(), StartTime: g.time(), EndTime: g.time(), RenewTill: g.time(), SRealm: g.str(), SName: g.name(),
		CAddr: ca, EncPAData: g.padata()}
}

func (g gen) encData() types.EncryptedData {
	kvno := 0
	if g.r.IntN(2) == 0 {
		kvno = int(g.int32())
	}
	return types.EncryptedData{EType: g.int32(), KVNO: kvno, Cipher: g.bytes(5000)}
}

func (g gen) ticket() messages.Ticket {
	return messages.Ticket{TktVNO: int(g.int32()), Realm: g.str(), SName: g.name(), EncPart: g.encData()}
}

func TestDEREncodersMatchGofork(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(7, 8))}
	n := 3000
	if testing.Short() {
		n = 500
	}
	for i := 0; i < n; i++ {
		etp := g.encTicketPart()
		got, err := MarshalEncTicketPart(etp)
		if err != nil {
			t.Fatal(err)
		}
		if want := goforkEncTicketPart(t, etp); !bytes.Equal(got, want) {
			t.Fatalf("EncTicketPart %d differs:\n ours   %x\n gofork %x\n%+v", i, got, want, etp)
		}
		if ad := etp.AuthorizationData; FindPACBool(ad) {
			in, err := TicketSignatureInput(etp)
			if err != nil {
				t.Fatal(err)
			}
			if want := goforkTicketSignatureInput(t, etp); !bytes.Equal(in, want) {
				t.Fatalf("ticket signature input %d differs", i)
			}
		}

		p := g.encKDCRepPart()
		for _, tgs := range []bool{false, true} {
			got, err := MarshalEncKDCRepPart(p, tgs)
			if err != nil {
				t.Fatal(err)
			}
			tag := tagEncASRepPart
			if tgs {
				tag = tagEncTGSRepPart
			}
			if want := goforkEncKDCRepPart(t, p, tag); !bytes.Equal(got, want) {
				t.Fatalf("EncKDCRepPart %d (tag %d) differs:\n ours   %x\n gofork %x\n%+v", i, tag, got, want, p)
			}
		}

		tkt := g.ticket()
		gotT, err := MarshalTicket(tkt)
		if err != nil {
			t.Fatal(err)
		}
		if wantT, _ := tkt.Marshal(); !bytes.Equal(gotT, wantT) {
			t.Fatalf("Ticket %d differs:\n ours   %x\n gofork %x", i, gotT, wantT)
		}
		// A ticket carrying its decrypted part still encodes as the clean ticket.
		dirty := tkt
		dirty.DecryptedEncPart = etp
		if b, _ := MarshalTicket(dirty); !bytes.Equal(b, gotT) {
			t.Fatalf("Ticket %d: DecryptedEncPart leaked into the encoding", i)
		}

		f := messages.KDCRepFields{PVNO: int(g.int32()), MsgType: []int{MsgASRep, MsgTGSRep}[i%2], PAData: g.padata(), CRealm: g.str(),
			CName: g.name(), Ticket: tkt, EncPart: g.encData()}
		gotR, err := MarshalKDCRep(f)
		if err != nil {
			t.Fatal(err)
		}
		if wantR := goforkKDCRep(t, f); !bytes.Equal(gotR, wantR) {
			t.Fatalf("KDC-REP %d differs:\n ours   %x\n gofork %x", i, gotR, wantR)
		}

		ed := g.encData()
		if want, _ := ed.Marshal(); !bytes.Equal(MarshalEncryptedData(ed), want) {
			t.Fatalf("EncryptedData %d differs", i)
		}
		ad := g.ad()
		if want, err := asn1.Marshal(ad); err != nil || !bytes.Equal(MarshalAuthorizationData(ad), want) {
			t.Fatalf("AuthorizationData %d differs (%v)", i, err)
		}
		pa := g.padata()
		if want, err := asn1.Marshal(pa); err != nil || !bytes.Equal(MarshalPAData(pa), want) {
			t.Fatalf("PA-DATA %d differs (%v)", i, err)
		}
	}
}

// Years gofork cannot encode are errors from both.
func TestDERTimeOutOfRange(t *testing.T) {
	for _, y := range []int{-1, 10000, 12345} {
		etp := messages.EncTicketPart{AuthTime: time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), EndTime: time.Now()}
		if _, err := asn1.Marshal(etp); err == nil {
			t.Fatalf("gofork encoded year %d", y)
		}
		if _, err := MarshalEncTicketPart(etp); err == nil {
			t.Fatalf("year %d encoded", y)
		}
		p := messages.EncKDCRepPart{EndTime: time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)}
		if _, err := MarshalEncKDCRepPart(p, true); err == nil {
			t.Fatalf("year %d encoded", y)
		}
	}
}

func FindPACBool(ad types.AuthorizationData) bool { _, ok := FindPAC(ad); return ok }

// goforkTicketSignatureInput is TicketSignatureInput written with gofork only.
func goforkTicketSignatureInput(t testing.TB, etp messages.EncTicketPart) []byte {
	ad := append(types.AuthorizationData(nil), etp.AuthorizationData...)
	for i, e := range ad {
		if e.ADType != 1 {
			continue
		}
		var inner types.AuthorizationData
		if _, err := asn1.Unmarshal(e.ADData, &inner); err != nil {
			continue
		}
		hit := false
		for j := range inner {
			if inner[j].ADType == 128 {
				inner[j].ADData, hit = []byte{0}, true
			}
		}
		if hit {
			ad[i].ADData, _ = asn1.Marshal(inner)
		}
	}
	etp.AuthorizationData = ad
	return goforkEncTicketPart(t, etp)
}

func BenchmarkMarshalEncTicketPartOurs(b *testing.B) {
	g := gen{rand.New(rand.NewPCG(1, 1))}
	etp := g.encTicketPart()
	etp.AuthorizationData, _ = PACAuthorizationData(make([]byte, 1000))
	b.ReportAllocs()
	for b.Loop() {
		MarshalEncTicketPart(etp)
	}
}

func BenchmarkMarshalEncTicketPartGofork(b *testing.B) {
	g := gen{rand.New(rand.NewPCG(1, 1))}
	etp := g.encTicketPart()
	etp.AuthorizationData, _ = PACAuthorizationData(make([]byte, 1000))
	b.ReportAllocs()
	for b.Loop() {
		goforkEncTicketPart(b, etp)
	}
}

func (g gen) kdcReqBody() messages.KDCReqBody {
	k := messages.KDCReqBody{KDCOptions: g.flags(), Realm: g.str(), Till: g.time(), Nonce: int(g.int32()), Addresses: g.addrs()}
	if g.r.IntN(3) > 0 {
		k.CName = g.name()
	}
	if g.r.IntN(3) > 0 {
		k.SName = g.name()
	}
	if g.r.IntN(2) == 0 {
		k.From = g.time()
	}
	if g.r.IntN(2) == 0 {
		k.RTime = g.time()
	}
	switch g.r.IntN(3) {
	case 0:
	case 1:
		k.EType = []int32{}
	default:
		for n := 1 + g.r.IntN(5); n > 0; n-- {
			k.EType = append(k.EType, g.int32())
		}
	}
	switch g.r.IntN(4) {
	case 0:
		k.EncAuthData = g.encData()
	case 1:
		k.EncAuthData = types.EncryptedData{Cipher: []byte{}}
	}
	if g.r.IntN(10) == 0 {
		k.AdditionalTickets = []messages.Ticket{g.ticket()}
	}
	return k
}

func (g gen) authenticator() types.Authenticator {
	a := types.Authenticator{AVNO: int(g.int32()), CRealm: g.str(), CName: g.name(), Cusec: int(g.int32()), CTime: g.time(),
		AuthorizationData: g.ad()}
	switch g.r.IntN(3) {
	case 0:
		a.Cksum = types.Checksum{CksumType: g.int32(), Checksum: g.bytes(40)}
	case 1:
		a.Cksum = types.Checksum{Checksum: []byte{}}
	}
	switch g.r.IntN(3) {
	case 0:
		a.SubKey = g.key()
	case 1:
		a.SubKey = types.EncryptionKey{KeyValue: []byte{}}
	}
	if g.r.IntN(2) == 0 {
		a.SeqNumber = int64(g.r.Uint64())
	}
	return a
}

// The client-side encoders equal gokrb5/gofork too.
func TestClientEncodersMatchGofork(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(31, 32))}
	for i := 0; i < 3000; i++ {
		k := g.kdcReqBody()
		want, err1 := k.Marshal()
		got, err2 := marshalKDCReqBody(k)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(got, want) {
			t.Fatalf("KDC-REQ-BODY %d: ours %x (%v), gokrb5 %x (%v)", i, got, err2, want, err1)
		}
		a := g.authenticator()
		want, err1 = a.Marshal()
		got, err2 = marshalAuthenticator(a)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Authenticator %d: ours %x (%v), gokrb5 %x (%v)", i, got, err2, want, err1)
		}
		ts := types.PAEncTSEnc{PATimestamp: g.time(), PAUSec: int(g.int32())}
		want, err1 = asn1.Marshal(ts)
		got, err2 = marshalPAEncTSEnc(ts)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(got, want) {
			t.Fatalf("PA-ENC-TS-ENC %d: ours %x (%v), gofork %x (%v)", i, got, err2, want, err1)
		}
		f := g.flags()
		if want, _ := asn1.Marshal(f); !bytes.Equal(marshalBitString(f), want) {
			t.Fatalf("BIT STRING %d differs", i)
		}
	}
}
