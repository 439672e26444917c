package labtest_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/enginelock"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/labtest"
)

// Without a Docker engine the example cannot run; outside CI it is left out
// (and says so), under CI the run fails as every missing peer does.
func TestMain(m *testing.M) {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err := labtest.Available(ctx)
	cancel()
	if err != nil && !peer.Required() {
		fmt.Fprintln(os.Stderr, "labtest: no Docker engine reachable, the example is skipped:", err)
		flag.Set("test.run", "^$")
	}
	release, err := enginelock.Shared() // not while the workshop's test makes and leaves a swarm
	if err != nil {
		fmt.Fprintln(os.Stderr, "labtest: engine lock:", err)
		os.Exit(1)
	}
	code := m.Run()
	release()
	os.Exit(code)
}

// A lab in containers, Bob's flow from his workstation, a broken delegation
// and its fix: what an integration suite does with it.
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := labtest.Run(ctx)
	defer lab.Terminate(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	conf, _ := os.ReadFile(lab.Krb5Conf())
	fmt.Println("krb5.conf names the KDC:", strings.Contains(string(conf), lab.KDCAddr()))
	f, err := lab.Flow(ctx, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("SQL says:", f.Page.SQL.Login, f.Page.SQL.AuthScheme)
	lab.Admin(ctx, []string{"delegation", "set", "svc_iispool", "none"})
	// The page still works as Bob; the second hop fails, and Flow says so.
	if f, err = lab.Flow(ctx, "bob"); err != nil && f.Page != nil && f.Page.SQL.Error != nil {
		e := f.Page.SQL.Error
		fmt.Printf("without delegation: %d state %d %s\n", e.Number, e.State, e.Message)
	}
	lab.Admin(ctx, []string{"delegation", "set", "svc_iispool", "constrained", "--to", "MSSQLSvc/sql.lab.local:1433"})
	if f, err = lab.Flow(ctx, "bob"); err == nil {
		fmt.Println("with constrained delegation:", f.Page.SQL.Login, f.Page.SQL.AuthScheme)
	}
	// Output:
	// krb5.conf names the KDC: true
	// SQL says: LAB\bob KERBEROS
	// without delegation: 18456 state 1 Login failed for user 'NT AUTHORITY\ANONYMOUS LOGON'.
	// with constrained delegation: LAB\bob KERBEROS
}
