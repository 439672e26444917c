// Package dockerlab runs the doublehop lab in containers, in the style of a
// testcontainers-go module: Run starts a realm whose hosts have their real
// names on a private network, and hands the caller everything a test suite
// needs.
//
//	lab, err := dockerlab.Run(ctx)        // or Run(ctx, dockerlab.WithScenario("no-delegation"))
//	dockerlab.Cleanup(t, lab)             // before checking err: a partial lab is returned too
//	if err != nil { t.Fatal(err) }
//	flow, err := lab.Flow(ctx, "bob")     // kinit + http://web.lab.local/ from ws01, inside the network
//	lab.Admin(ctx, []string{"setspn", "-L", "svc_iispool"})  // runs in the DC container
//	evs, _ := lab.Events(ctx)             // every tier's events, from the container logs
//
// The containers (one FROM-scratch image, one static binary, EnsureImage):
//
//	dc    dc.lab.local    /doublehop kdc --state /state --listen :88 --netlogon-listen :445 --events -
//	web   web.lab.local   /doublehop web --keytab /etc/doublehop/web.keytab --kdc dc.lab.local:88 --netlogon dc.lab.local:445 --settings /etc/doublehop/web.yaml --listen :80 --events -
//	sql   sql.lab.local   /doublehop sql --keytab /etc/doublehop/sql.keytab --kdc dc.lab.local:88 --netlogon dc.lab.local:445 --settings /etc/doublehop/sql.yaml --listen :1433 --events -
//	ws01  ws01.lab.local  /doublehop idle   (Bob's workstation: docker exec ... /doublehop client)
//
// Each tier gets only what its real counterpart holds: the DC the directory
// (with the passwords), web and SQL their own service account's keytab and
// their own section of the lab file, ws01 a krb5.conf. Each endpoint is
// published on 127.0.0.1 only (random ports by default, WithPorts for fixed
// ones); the host-side krb5.conf, hosts and lab.env are in Lab.StateDir, and
// Lab.Dialer maps the lab's names to the published ports, so SPNs stay the
// real host names from the host too.
//
// A Lab is a scenarios.Target: the scenario engine runs the catalog against
// it (RunScenario) exactly as against the embedded lab. Everything is
// labelled (LabelLab, LabelOwner, ...): Terminate and Down remove a lab by
// label, Sweep removes what killed test runs left.
//
// The engine is driven through internal/engine, a small client of the Docker
// Engine API over net/http, so the CLI builds without a Docker SDK. Package
// labtest, the harness for test suites, starts the same containers with
// testcontainers-go instead (WithStarter).
//
// Where no Docker engine answers, Available says why; tests skip on it.
package dockerlab
