package dockerlab_test

import (
	"context"
	"fmt"
	"time"

	"github.com/doublehop/doublehop/dockerlab"
)

// A lab in containers, Bob's flow from his workstation, a broken delegation
// and its fix — what an integration suite does with it.
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := dockerlab.Run(ctx)
	defer lab.Terminate(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(lab.KDCAddr(), lab.WebURL(), lab.SQLAddr(), lab.Krb5Conf(), lab.Password("bob"))
	if f, err := lab.Flow(ctx, "bob"); err == nil {
		fmt.Println(f.Page.SQL.Login, f.Page.SQL.AuthScheme) // LAB\bob KERBEROS
	}
	lab.Admin(ctx, []string{"delegation", "set", "svc_iispool", "none"})
	rep, _ := lab.RunScenario(ctx, "no-delegation", nil)
	fmt.Println(rep.OK())
}
