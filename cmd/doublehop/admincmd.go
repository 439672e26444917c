package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/lab"
)

func init() {
	for _, v := range admin.Verbs {
		name := v.Name
		register(name, v.Summary, func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runAdmin(name, args, stdout)
		})
	}
	register("keytab", "export an account's keys as a keytab (MIT kvno -k, tshark, a tier)", cmdKeytab)
}

// runAdmin runs an admin verb on the state's directory; AD-style switches
// (setspn -S) pass through, only --state is taken out.
func runAdmin(verb string, args []string, stdout io.Writer) error {
	state, rest := splitState(args)
	if (len(rest) > 0 && admin.IsHelp(rest)) || (len(rest) == 0 && verb != "policy") {
		return admin.Run(nil, []string{verb, "--help"}, stdout)
	}
	s, err := directory.OpenExisting(state)
	if err != nil {
		return err
	}
	err = admin.Run(s, append([]string{verb}, rest...), stdout)
	switch {
	case errors.Is(err, directory.ErrDuplicateSPN), errors.Is(err, directory.ErrNoSuchSPN):
		return exitError(1)
	case errors.Is(err, admin.ErrUsage):
		return fmt.Errorf("%v (doublehop %s --help)", err, verb)
	}
	return err
}

// splitState pulls --state DIR out of args that otherwise use AD-style switches.
func splitState(args []string) (string, []string) {
	state := defaultState()
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--state" || a == "-state":
			if i+1 < len(args) {
				state = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--state="):
			state = strings.TrimPrefix(a, "--state=")
		default:
			rest = append(rest, a)
		}
	}
	return state, rest
}

func cmdKeytab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keytab", "keytab [--state DIR] -o FILE ACCOUNT | --all -o FILE", stderr)
	state := fs.String("state", defaultState(), "state directory")
	out := fs.String("o", "", "keytab file to write (required)")
	all := fs.Bool("all", false, "every account of the lab (for Wireshark/tshark decryption)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *out == "" || (len(pos) != 1 && !*all) {
		fs.Usage()
		return errUsage
	}
	s, err := directory.OpenExisting(*state)
	if err != nil {
		return err
	}
	if *all {
		n, err := lab.ExportAllKeytab(s, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %d entries for every account of %s (keep it secret: it decrypts every ticket)\n", *out, n, s.View().Lab.Realm)
		return nil
	}
	if err := lab.ExportKeytab(s, pos[0], *out); err != nil {
		return err
	}
	e, _ := s.View().Account(pos[0])
	fmt.Fprintf(stdout, "wrote %s: %s, kvno %d, %d principal(s), etypes %v\n", *out, e.Name, e.KVNO, 1+len(e.SPNs), admin.ETypeNames(e.ETypes))
	return nil
}

func openStore(state string) (*directory.Store, error) { return directory.OpenExisting(state) }
