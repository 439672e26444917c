package pac

import (
	"bytes"
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

func benchPACInfo() Info {
	return Info{LogonTime: time.Now(), EffectiveName: "bob", FullName: "Bob Smith", LogonServer: "DC", LogonDomainName: "LAB",
		DomainSID: "S-1-5-21-1004336348-1177238915-682003330", UserRID: 1105, PrimaryGroupRID: 513, GroupRIDs: []uint32{513, 1107, 1108},
		UserAccountControl: 0x200, ClientName: "bob", UPN: "bob@lab.local", DNSDomainName: "LAB.LOCAL", SamName: "bob",
		UserSID: "S-1-5-21-1004336348-1177238915-682003330-1105", ExtraSIDs: []string{"S-1-18-1"}, Attributes: WasRequested,
		Requestor: "S-1-5-21-1004336348-1177238915-682003330-1105"}
}

func BenchmarkNewPAC(b *testing.B) {
	info := benchPACInfo()
	b.ReportAllocs()
	for b.Loop() {
		New(info)
	}
}

func BenchmarkPACSign(b *testing.B) {
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{3}, 32)}
	p, _ := New(benchPACInfo())
	b.ReportAllocs()
	for b.Loop() {
		p.Sign(key, key)
	}
}

func BenchmarkParsePAC(b *testing.B) {
	key := types.EncryptionKey{KeyType: kcrypto.ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{3}, 32)}
	raw, _ := Encode(benchPACInfo(), key, key)
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw)
	}
}
