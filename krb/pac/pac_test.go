package pac

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/dtyp"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/adtype"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/pac"
	"github.com/jcmturner/gokrb5/v8/test/testdata"
	"github.com/jcmturner/gokrb5/v8/types"
)

func testKey(etype int32, seed byte) types.EncryptionKey {
	n := map[int32]int{kcrypto.ETypeAES128SHA1: 16, kcrypto.ETypeAES256SHA1: 32, kcrypto.ETypeRC4HMAC: 16}[etype]
	return types.EncryptionKey{KeyType: etype, KeyValue: bytes.Repeat([]byte{seed}, n)}
}

var authTime = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

func bobInfo() Info {
	return Info{
		LogonTime:          authTime,
		EffectiveName:      "bob",
		FullName:           "Bob Example",
		LogonServer:        "DC",
		LogonDomainName:    "LAB",
		DomainSID:          "S-1-5-21-1-2-3",
		UserRID:            1105,
		PrimaryGroupRID:    513,
		GroupRIDs:          []uint32{513, 1110},
		ExtraSIDs:          []string{"S-1-18-1"},
		UserAccountControl: 0x200,
		ClientName:         "bob",
		UPN:                "bob@lab.local",
		DNSDomainName:      "LAB.LOCAL",
		SamName:            "bob",
		UserSID:            "S-1-5-21-1-2-3-1105",
		Requestor:          "S-1-5-21-1-2-3-1105",
		Attributes:         WasRequested, HasAttributes: true,
	}
}

func TestPACRoundTrip(t *testing.T) {
	for _, c := range []struct{ srv, kdc int32 }{{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES256SHA1}, {kcrypto.ETypeAES128SHA1, kcrypto.ETypeAES256SHA1}, {kcrypto.ETypeRC4HMAC, kcrypto.ETypeAES128SHA1}} {
		srvKey, kdcKey := testKey(c.srv, 1), testKey(c.kdc, 2)
		in := bobInfo()
		in.Delegation = &S4UDelegationInfo{S4U2ProxyTarget: "MSSQLSvc/sql.lab.local:1433", TransitedServices: []string{"svc_iispool@LAB.LOCAL"}}
		b, err := Encode(in, srvKey, kdcKey)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.UserFlags |= logonExtraSIDs
		if !reflect.DeepEqual(p.Info, want) {
			t.Fatalf("etypes %v: info\n got %+v\nwant %+v", c, p.Info, want)
		}
		if !p.HasLogonInfo() || p.VerifyServerChecksum(srvKey) != nil || p.VerifyKDCChecksum(kdcKey) != nil {
			t.Fatalf("etypes %v: signatures do not verify", c)
		}
		if p.VerifyServerChecksum(testKey(c.srv, 3)) == nil || p.VerifyKDCChecksum(srvKey) == nil {
			t.Fatalf("etypes %v: wrong key accepted", c)
		}
		// Every single-byte change is caught by the parser or a signature.
		for i := range b {
			m := bytes.Clone(b)
			m[i] ^= 0x01
			q, err := Parse(m)
			if err == nil && q.VerifyServerChecksum(srvKey) == nil && q.VerifyKDCChecksum(kdcKey) == nil {
				t.Fatalf("etypes %v: flipped byte %d of %d still verifies", c, i, len(b))
			}
		}
	}
}

// gokrb5 services with DecodePAC(true) must accept our PACs (MIT 1.20 style
// PACs without LOGON_INFO are the other case they reject).
func TestPACGokrb5Compat(t *testing.T) {
	for _, etype := range []int32{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1, kcrypto.ETypeRC4HMAC} {
		srvKey, krbtgt := testKey(etype, 4), testKey(kcrypto.ETypeAES256SHA1, 5)
		tgtPAC, err := Encode(bobInfo(), krbtgt, krbtgt)
		if err != nil {
			t.Fatal(err)
		}
		// The KDC's TGS path: copy the TGT PAC, add S4U2Proxy delegation info, sign for the service.
		p, err := Parse(tgtPAC)
		if err != nil {
			t.Fatal(err)
		}
		deleg := &S4UDelegationInfo{S4U2ProxyTarget: "MSSQLSvc/sql.lab.local:1433", TransitedServices: []string{"svc_iispool@LAB.LOCAL", "HTTP/web.lab.local@LAB.LOCAL"}}
		if err := p.SetDelegation(deleg); err != nil {
			t.Fatal(err)
		}
		etp := testEncTicketPart(t, tgtPAC)
		if err := p.SignTicket(&etp, srvKey, krbtgt); err != nil {
			t.Fatal(err)
		}
		b, ok := kmsg.FindPAC(etp.AuthorizationData)
		if !ok {
			t.Fatal("no PAC in the ticket")
		}
		for _, raw := range [][]byte{tgtPAC, b} {
			key := srvKey
			if bytes.Equal(raw, tgtPAC) {
				key = krbtgt
			}
			var g pac.PACType
			if err := g.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			if err := g.ProcessPACInfoBuffers(key, log.New(io.Discard, "", 0)); err != nil {
				t.Fatalf("etype %d: gokrb5 rejects the PAC: %v", etype, err)
			}
			k := g.KerbValidationInfo
			var groups []uint32
			for _, gm := range k.GroupIDs {
				groups = append(groups, gm.RelativeID)
			}
			got := []any{k.EffectiveName.Value, k.FullName.Value, k.LogonDomainName.Value, k.LogonServer.Value, k.UserID, k.PrimaryGroupID,
				groups, k.LogonDomainID.String(), len(k.ExtraSIDs), k.UserAccountControl, k.LogOnTime.Time(),
				g.ClientInfo.Name, g.ClientInfo.ClientID.Time(), g.UPNDNSInfo.UPN, g.UPNDNSInfo.DNSDomain}
			want := []any{"bob", "Bob Example", "LAB", "DC", uint32(1105), uint32(513),
				[]uint32{513, 1110}, "S-1-5-21-1-2-3", 1, uint32(0x200), authTime,
				"bob", authTime, "bob@lab.local", "LAB.LOCAL"}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("etype %d: gokrb5 decoded\n%v\nwant\n%v", etype, got, want)
			}
			if k.ExtraSIDs[0].SID.String() != "S-1-18-1" || k.UserFlags&logonExtraSIDs == 0 {
				t.Fatalf("extra SIDs %v, user flags %#x", k.ExtraSIDs[0].SID.String(), k.UserFlags)
			}
			if bytes.Equal(raw, tgtPAC) {
				if g.S4UDelegationInfo != nil {
					t.Fatal("TGT PAC has delegation info")
				}
				continue
			}
			d := g.S4UDelegationInfo
			if d == nil || d.S4U2proxyTarget.Value != deleg.S4U2ProxyTarget || len(d.S4UTransitedServices) != 2 ||
				d.S4UTransitedServices[0].Value != deleg.TransitedServices[0] || d.S4UTransitedServices[1].Value != deleg.TransitedServices[1] {
				t.Fatalf("gokrb5 S4U_DELEGATION_INFO %+v", d)
			}
		}
	}
}

func testEncTicketPart(t testing.TB, pacBytes []byte) messages.EncTicketPart {
	t.Helper()
	ad, err := kmsg.PACAuthorizationData(pacBytes)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := asn1.Marshal(types.AuthorizationData{{ADType: 141, ADData: []byte("restriction")}})
	ad = append(ad, types.AuthorizationDataEntry{ADType: adtype.ADIfRelevant, ADData: other})
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Forwardable)
	types.SetFlag(&f, flags.PreAuthent)
	return messages.EncTicketPart{
		Flags:             f,
		Key:               testKey(kcrypto.ETypeAES256SHA1, 9),
		CRealm:            "LAB.LOCAL",
		CName:             types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "bob"),
		AuthTime:          authTime,
		StartTime:         authTime,
		EndTime:           authTime.Add(10 * time.Hour),
		AuthorizationData: ad,
	}
}

func TestPACTicketSignature(t *testing.T) {
	srvKey, krbtgt := testKey(kcrypto.ETypeAES256SHA1, 6), testKey(kcrypto.ETypeAES256SHA1, 7)
	tgtPAC, err := Encode(bobInfo(), krbtgt, krbtgt)
	if err != nil {
		t.Fatal(err)
	}
	etp := testEncTicketPart(t, tgtPAC)
	if err := VerifyTicketSignature(etp, krbtgt); !errors.Is(err, ErrNoTicketSignature) {
		t.Fatalf("TGT PAC: %v", err)
	}
	p, err := Parse(tgtPAC)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SignTicket(&etp, srvKey, krbtgt); err != nil {
		t.Fatal(err)
	}
	// The copied TGT PAC is replaced, first; the other AD-IF-RELEVANT is kept.
	if len(etp.AuthorizationData) != 2 || etp.AuthorizationData[1].ADType != adtype.ADIfRelevant {
		t.Fatalf("authorization data %+v", etp.AuthorizationData)
	}
	// Through the wire encoding, as the KDC sees an S4U2Proxy evidence ticket.
	b, err := kmsg.MarshalEncTicketPart(etp)
	if err != nil {
		t.Fatal(err)
	}
	var got messages.EncTicketPart
	if err := got.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if err := VerifyTicketSignature(got, krbtgt); err != nil {
		t.Fatalf("unchanged ticket: %v", err)
	}
	if err := VerifyTicketSignature(got, srvKey); err == nil {
		t.Fatal("ticket signature verifies with the service key")
	}
	// Bronze Bit: the service flips forwardable; the PAC signatures still hold, the ticket signature does not.
	types.UnsetFlag(&got.Flags, flags.Forwardable)
	if err := VerifyTicketSignature(got, krbtgt); err == nil {
		t.Fatal("ticket signature verifies after the forwardable flag changed")
	}
	raw, _ := kmsg.FindPAC(got.AuthorizationData)
	q, err := Parse(raw)
	if err != nil || q.VerifyServerChecksum(srvKey) != nil || q.VerifyKDCChecksum(krbtgt) != nil {
		t.Fatalf("PAC signatures: %v", err)
	}
	types.SetFlag(&got.Flags, flags.Forwardable)
	if err := VerifyTicketSignature(got, krbtgt); err != nil {
		t.Fatalf("restored ticket: %v", err)
	}
	if err := VerifyTicketSignature(messages.EncTicketPart{}, krbtgt); !errors.Is(err, ErrNoPAC) {
		t.Fatalf("no PAC: %v", err)
	}
}

func TestPACFindGarbage(t *testing.T) {
	empty, _ := asn1.Marshal(types.AuthorizationData{})
	for _, ad := range []types.AuthorizationData{
		nil,
		{{ADType: adtype.ADIfRelevant}},
		{{ADType: adtype.ADIfRelevant, ADData: []byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}}},
		{{ADType: adtype.ADIfRelevant, ADData: empty}},
		{{ADType: adtype.ADWin2KPAC, ADData: []byte{1}}},
	} {
		if _, ok := kmsg.FindPAC(ad); ok {
			t.Fatalf("kmsg.FindPAC(%v) found a PAC", ad)
		}
	}
	if _, err := Parse(nil); err == nil {
		t.Fatal("ParsePAC(nil) succeeded")
	}
}

func seedPACs(f *testing.F) [][]byte {
	key := testKey(kcrypto.ETypeAES256SHA1, 8)
	in := bobInfo()
	in.Delegation = &S4UDelegationInfo{S4U2ProxyTarget: "MSSQLSvc/sql.lab.local:1433", TransitedServices: []string{"svc_iispool@LAB.LOCAL"}}
	a, err := Encode(in, key, key)
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(Info{ClientName: "alice", LogonTime: authTime})
	if err != nil {
		f.Fatal(err)
	}
	etp := testEncTicketPart(f, a)
	if err := p.SignTicket(&etp, testKey(kcrypto.ETypeRC4HMAC, 1), key); err != nil {
		f.Fatal(err)
	}
	b, _ := kmsg.FindPAC(etp.AuthorizationData)
	return [][]byte{a, b}
}

func FuzzParsePAC(f *testing.F) {
	for _, s := range seedPACs(f) {
		f.Add(s)
	}
	key := testKey(kcrypto.ETypeAES256SHA1, 8)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		p.VerifyServerChecksum(key)
		p.VerifyKDCChecksum(key)
		info := p.Info
		if _, err := p.Sign(key, key); err != nil {
			t.Fatalf("a parsed PAC does not re-sign: %v", err)
		}
		if !reflect.DeepEqual(info, p.Info) {
			t.Fatalf("re-signing changed the info:\n%+v\n%+v", info, p.Info)
		}
	})
}

func FuzzFindPAC(f *testing.F) {
	for _, s := range seedPACs(f) {
		ad, _ := kmsg.PACAuthorizationData(s)
		f.Add(ad[0].ADData)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ad := types.AuthorizationData{{ADType: adtype.ADIfRelevant, ADData: b}}
		kmsg.FindPAC(ad)
		kmsg.TicketSignatureInput(messages.EncTicketPart{AuthorizationData: ad})
		if _, err := kmsg.SetPAC(ad, []byte{0}); err != nil {
			t.Fatal(err)
		}
	})
}

// Real PACs (an AD PAC from gokrb5's test data and the MS-PAC section 3
// sample) parse to what gokrb5 decodes, and the AD server signature verifies.
func TestPACParsesWindowsPACs(t *testing.T) {
	kt := keytab.New()
	ktb, _ := hex.DecodeString(testdata.KEYTAB_SYSHTTP_TEST_GOKRB5)
	if err := kt.Unmarshal(ktb); err != nil {
		t.Fatal(err)
	}
	key, _, err := kt.GetEncryptionKey(types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "sysHTTP"), "TEST.GOKRB5", 2, 18)
	if err != nil {
		t.Fatal(err)
	}
	adPAC, _ := hex.DecodeString(testdata.MarshaledPAC_AD_WIN2K_PAC)
	var ms types.AuthorizationData
	adb, _ := hex.DecodeString(testdata.MarshaledPAC_AuthorizationData_MS)
	if _, err := asn1.Unmarshal(adb, &ms); err != nil || len(ms) != 1 {
		t.Fatalf("MS sample: %v", err)
	}
	for i, raw := range [][]byte{adPAC, ms[0].ADData} {
		p, err := Parse(raw)
		if err != nil {
			t.Fatalf("PAC %d: %v", i, err)
		}
		var g pac.PACType
		if err := g.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		for _, b := range g.Buffers {
			if b.ULType == TypeLogonInfo {
				g.KerbValidationInfo = new(pac.KerbValidationInfo)
				if err := g.KerbValidationInfo.Unmarshal(raw[b.Offset : b.Offset+uint64(b.CBBufferSize)]); err != nil {
					t.Fatal(err)
				}
			}
		}
		k := g.KerbValidationInfo
		var groups []uint32
		for _, gm := range k.GroupIDs {
			groups = append(groups, gm.RelativeID)
		}
		var extra []string
		for _, s := range k.ExtraSIDs {
			extra = append(extra, s.SID.String())
		}
		got := []any{p.Info.EffectiveName, p.Info.FullName, p.Info.LogonServer, p.Info.LogonDomainName, p.Info.DomainSID,
			p.Info.UserRID, p.Info.PrimaryGroupRID, p.Info.GroupRIDs, p.Info.ExtraSIDs, p.Info.UserAccountControl, p.Info.UserFlags}
		want := []any{k.EffectiveName.Value, k.FullName.Value, k.LogonServer.Value, k.LogonDomainName.Value, k.LogonDomainID.String(),
			k.UserID, k.PrimaryGroupID, groups, extra, k.UserAccountControl, k.UserFlags}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("PAC %d:\n got %v\nwant %v", i, got, want)
		}
		if i == 0 {
			if err := p.VerifyServerChecksum(key); err != nil {
				t.Fatalf("AD PAC server signature: %v", err)
			}
			if p.Info.ClientName != "testuser1" || p.Info.UPN != "testuser1@test.gokrb5" || p.Info.DNSDomainName != "TEST.GOKRB5" {
				t.Fatalf("AD PAC info %+v", p.Info)
			}
		}
	}
}

func TestSIDStringFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 2000; i++ {
		s := dtyp.SID{Auth: r.Uint64() >> (16 + r.IntN(48))}
		for j := r.IntN(16); j > 0; j-- {
			s.Subs = append(s.Subs, r.Uint32()>>r.IntN(32))
		}
		var want strings.Builder
		if s.Auth < 1<<32 {
			fmt.Fprintf(&want, "S-1-%d", s.Auth)
		} else {
			fmt.Fprintf(&want, "S-1-0x%012X", s.Auth)
		}
		for _, v := range s.Subs {
			fmt.Fprintf(&want, "-%d", v)
		}
		if s.String() != want.String() {
			t.Fatalf("%q, want %q", s.String(), want.String())
		}
	}
}
