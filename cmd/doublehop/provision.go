package main

import (
	"context"
	"fmt"
	"io"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/provision"
)

func init() {
	register("provision", "make a workshop seat's realm: fresh keys, keytabs, directory (to a directory or a Kubernetes Secret)", cmdProvision)
}

// cmdProvision is the Kubernetes chart's provisioning Job (and a trainer's
// way to see what a seat holds): seat N's realm with fresh passwords, as
// files or as a Secret in the pod's namespace, made once.
func cmdProvision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("provision", "provision --seat N (--out DIR | --k8s-secret NAME) [--public-host NAME]... [--kdc-address HOST:PORT] [--lab FILE]", stderr)
	seat := fs.Int("seat", 1, "the seat's number (in Bob's password)")
	out := fs.String("out", "", "write the seat's files to this directory (0600)")
	secretName := fs.String("k8s-secret", "", "create this Secret in the pod's namespace unless it exists (the chart's Job)")
	kdcAddr := fs.String("kdc-address", "", "where attendees reach the seat's KDC (HOST:PORT): writes attendee.krb5.conf")
	labFile := fs.String("lab", "", "lab file to start from instead of the default lab")
	var public hostList
	fs.Var(&public, "public-host", "a name attendees type for the seat's page: HTTP/NAME on the web account (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*out == "") == (*secretName == "") {
		return fmt.Errorf("give one of --out DIR and --k8s-secret NAME: %w", errUsage)
	}
	base, err := directory.ReadFile(*labFile)
	if err != nil {
		return err
	}
	make := func() (map[string][]byte, error) {
		l, pw, err := provision.Seat(base, *seat, public)
		if err != nil {
			return nil, err
		}
		return provision.SeatFiles(l, pw, *kdcAddr)
	}
	if *out != "" {
		files, err := make()
		if err != nil {
			return err
		}
		if err := provision.WriteDir(*out, files); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "seat %d: %d files in %s\n", *seat, len(files), *out)
		return nil
	}
	k, err := provision.LoadInCluster()
	if err != nil {
		return err
	}
	made, err := k.EnsureSecret(ctx, *secretName, map[string]string{"app.kubernetes.io/name": "doublehop", "doublehop.org/seat": fmt.Sprint(*seat)}, make)
	if err != nil {
		return err
	}
	if made {
		fmt.Fprintf(stdout, "seat %d: secret %s/%s created\n", *seat, k.Namespace, *secretName)
	} else {
		fmt.Fprintf(stdout, "seat %d: secret %s/%s exists: its keys are kept\n", *seat, k.Namespace, *secretName)
	}
	return nil
}
