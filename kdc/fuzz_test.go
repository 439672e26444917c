package kdc

import (
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FuzzHandle feeds arbitrary bytes to the KDC's request handler. A panic, even
// one Handle recovers, is a failure.
func FuzzHandle(f *testing.F) {
	store, err := directory.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	ev := events.NewMemory(16)
	k := New(Config{Directory: store, Events: ev})
	bob, _ := store.View().Account("bob")
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	pa, _ := kmsg.NewPAEncTimestamp(key, 1, time.Now())
	as, _, _ := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, PAData: []types.PAData{pa}}.Marshal()
	f.Add(as)
	asNoPA, _, _ := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}}.Marshal()
	f.Add(asNoPA)
	f.Add([]byte{0x6c, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		k.Handle(b, "fuzz")
		for _, e := range ev.Events() {
			if e.ID == events.TierStatus && strings.Contains(e.Message, "panic") {
				t.Fatalf("KDC recovered from a panic: %s", e.Message)
			}
		}
	})
}
