package scenarios

import (
	"bytes"
	"context"
	"testing"

	"github.com/doublehop/doublehop/lab"
)

// Every catalog scenario is a test: a fresh embedded lab, the setup, every
// step's expectations at every tier, and explain's diagnosis.
func TestCatalog(t *testing.T) {
	all, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 18 {
		t.Fatalf("catalog has %d scenarios", len(all))
	}
	for _, s := range all {
		t.Run(s.ID, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l, err := lab.Start(ctx, lab.Options{StateDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			tg, err := OpenState(l.StateDir)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			var out bytes.Buffer
			rep, err := NewEngine(tg, Options{Out: &out}).Run(ctx, s)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !rep.OK() {
				t.Fatalf("scenario failed:\n%s", out.String())
			}
		})
	}
}

func TestParseRejectsBadFiles(t *testing.T) {
	for _, b := range []string{
		"id: x\ntitle: y\nsteps: []\n",
		"id: x\ntitle: y\nsteps:\n  - do: frobnicate\n",
		"id: x\ntitle: y\nsteps:\n  - do: browse\n",
		"id: x\ntitle: y\nunknown_field: 1\nsteps:\n  - do: explain\n",
	} {
		if _, err := Parse([]byte(b)); err == nil {
			t.Errorf("accepted:\n%s", b)
		}
	}
}
