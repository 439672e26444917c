package ldapserver

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/ldap"
	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzConn feeds a connection arbitrary bytes, anonymous or already bound as
// the administrator (the first byte's low bit), so binds, searches and writes
// all meet hostile input. Serve's recover is not in the way here: a panic
// fails the target.
func FuzzConn(f *testing.F) {
	search := func(filter string) []byte {
		p, err := goldap.CompileFilter(filter)
		if err != nil {
			f.Fatal(err)
		}
		return ldap.Envelope(2, ldap.NewSearchOp("DC=lab,DC=local", ldap.ScopeSubtree, p, []string{"*"}, 3),
			ldap.NewControl(ldap.OIDPagedResults, false, ldap.PagingValue(2, nil)))
	}
	modify := func() []byte {
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.OpModifyRequest, nil, "")
		op.AppendChild(ldap.Octets("CN=svc_iispool,OU=SVC_Accounts,DC=lab,DC=local"))
		seq := ber.NewSequence("")
		ch := ber.NewSequence("")
		ch.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(ldap.ModAdd), ""))
		pa := ber.NewSequence("")
		pa.AppendChild(ldap.Octets("servicePrincipalName"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		set.AppendChild(ldap.Octets("HTTP/fuzz.lab.local"))
		pa.AppendChild(set)
		ch.AppendChild(pa)
		seq.AppendChild(ch)
		op.AppendChild(seq)
		return ldap.Envelope(3, op)
	}
	for _, seed := range [][]byte{
		search("(objectClass=*)"),
		search("(&(servicePrincipalName=HTTP/*)(userAccountControl:1.2.840.113556.1.4.803:=512))"),
		modify(),
	} {
		f.Add(append([]byte{0}, seed...))
		f.Add(append([]byte{1}, seed...))
	}
	st, err := directory.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Directory: st, Idle: 2 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		cli, srv := net.Pipe()
		c := &conn{s: s, raw: srv, net: srv, r: bufio.NewReader(srv)}
		if b[0]&1 == 1 {
			c.who = &identity{Account: "administrator", Client: "administrator@LAB.LOCAL", Mech: "FUZZ", Admin: true}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() { defer close(done); c.serve(ctx); srv.Close() }()
		go io.Copy(io.Discard, cli)
		cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
		cli.Write(b[1:])
		cli.Close()
		<-done
	})
}
