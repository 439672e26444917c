package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/lab"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
)

// A developer's own Kerberized service against the embedded lab: add its
// account with an SPN, export its keytab, and check the ticket Bob gets for
// it with gokrb5 (decrypt with the keytab, read the PAC).
func ExampleLab_Admin() {
	dir, _ := os.MkdirTemp("", "doublehop-example-")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{StateDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	if _, err := l.Admin("account", "add", "svc_app", "service", "--password", "App-Passw0rd!", "--spn", "HTTP/app.lab.local"); err != nil {
		fmt.Println(err)
		return
	}
	kt := filepath.Join(dir, "app.keytab")
	if err := lab.ExportKeytab(l.Store, "svc_app", kt); err != nil {
		fmt.Println(err)
		return
	}

	cfg := client.Config{CCache: filepath.Join(dir, "bob.cc"), Dialer: l.Dialer}
	client.FromKrb5Conf(l.Krb5Conf(), &cfg)
	bob := client.New(cfg)
	if _, err := bob.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		fmt.Println(err)
		return
	}
	cred, err := bob.ServiceTicket(ctx, "HTTP/app.lab.local")
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := gokeytab.Load(kt)
	if err != nil {
		fmt.Println(err)
		return
	}
	tkt := cred.Ticket
	if err := tkt.DecryptEncPart(keys, nil); err != nil {
		fmt.Println("gokrb5:", err)
		return
	}
	ok, pac, err := tkt.GetPACType(keys, nil, nil)
	if err != nil || !ok {
		fmt.Println("PAC:", ok, err)
		return
	}
	fmt.Println("ticket for", tkt.SName.PrincipalNameString(), "issued to", tkt.DecryptedEncPart.CName.PrincipalNameString())
	fmt.Println("PAC logon name:", pac.KerbValidationInfo.EffectiveName.Value)
	// Output:
	// ticket for HTTP/app.lab.local issued to bob
	// PAC logon name: bob
}
