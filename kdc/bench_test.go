package kdc

import (
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/types"
)

func benchKDC(b *testing.B) (*Server, *directory.Entry) {
	store, err := directory.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	w, err := events.OpenFile(b.TempDir() + "/kdc.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	bob, _ := store.View().Account("bob")
	return New(Config{Directory: store, Events: w}), bob
}

// BenchmarkHandleAS is one AS-REQ with PA-ENC-TIMESTAMP through Handle (no network).
func BenchmarkHandleAS(b *testing.B) {
	k, bob := benchKDC(b)
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	pa, _ := kmsg.NewPAEncTimestamp(key, 1, time.Now())
	req, _, _ := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}},
		ETypes: []int32{kcrypto.ETypeAES256SHA1}, PAData: []types.PAData{pa}}.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if rep := k.Handle(req, "bench"); len(rep) == 0 || rep[0] != 0x6b {
			b.Fatal("no AS-REP")
		}
	}
}

// BenchmarkHandleTGS is one TGS-REQ for HTTP/web.lab.local through Handle.
func BenchmarkHandleTGS(b *testing.B) {
	k, bob := benchKDC(b)
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	pa, _ := kmsg.NewPAEncTimestamp(key, 1, time.Now())
	asreq, nonce, _ := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}},
		ETypes: []int32{kcrypto.ETypeAES256SHA1}, PAData: []types.PAData{pa}}.Marshal()
	tgt, err := kmsg.DecodeKDCRep(k.Handle(asreq, "bench"), key, kcrypto.UsageASRepEncPart, nonce)
	if err != nil {
		b.Fatal(err)
	}
	c := tgt.Credential()
	req, _, _, _, err := kmsg.TGSRequest{Realm: "LAB.LOCAL", Client: c.Info.PName, ClientRealm: "LAB.LOCAL", TGT: c.Ticket, SessionKey: c.Info.Key,
		Service: kmsg.ParsePrincipalName("HTTP/web.lab.local")}.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rep := k.Handle(req, "bench"); len(rep) == 0 || rep[0] != 0x6d {
			b.Fatalf("no TGS-REP: %x", rep[:min(len(rep), 8)])
		}
	}
}
