package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/lab"
)

func init() {
	register("up", "run the whole lab in this process on loopback (KDC, web, SQL) until interrupted", cmdUp)
}

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", "up [--state DIR] [--lab FILE] [--reset] [--kdc-port N] [--ldap-port N] [--ldaps-port N] [--rpc-port N] [--web-port N] [--sql-port N]", stderr)
	state := fs.String("state", defaultState(), "state directory (directory, krb5.conf, lab.env, keytabs, events)")
	labFile := fs.String("lab", "", "lab file to use instead of the embedded default lab")
	reset := fs.Bool("reset", false, "discard the state's directory and start from the lab file (or the default lab)")
	host := fs.String("host", "127.0.0.1", "listen address")
	ldapsPort := fs.Int("ldaps-port", 0, "the DC's LDAP over TLS port (0: any free port; 636 beside --ldap-port 389)")
	ldapPort := fs.Int("ldap-port", 0, "the DC's LDAP port (0: any free port; 389 for impacket's findDelegation.py and GetUserSPNs.py, with --host 127.0.1.1)")
	rpcPort := fs.Int("rpc-port", 0, "the DC's RPC endpoint mapper port (0: any free port; 135 for tools that find DRSUAPI through it: Samba's, impacket's secretsdump-style DCSync)")
	kdcPort := fs.Int("kdc-port", 0, "KDC port, TCP and UDP (0: any free port; 88 for tools that only talk to 88, such as impacket: with --host 127.0.1.1 it stays off other services)")
	webPort := fs.Int("web-port", 0, "web tier port (0: any free port)")
	sqlPort := fs.Int("sql-port", 0, "SQL tier port (0: any free port)")
	level := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	pcap := fs.String("capture", "", "write a pcap of the lab's Kerberos, HTTP and TDS traffic to FILE (open it with tshark/Wireshark)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	var seed *directory.Lab
	if *labFile != "" {
		var err error
		if seed, err = directory.ReadFile(*labFile); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(*state, directory.FileName)); err == nil && !*reset {
			fmt.Fprintf(stderr, "note: %s already holds a directory; --lab applies with --reset\n", *state)
		}
	}
	start := time.Now()
	fmt.Fprintf(stdout, "doublehop: starting the embedded lab in %s\n", *state)
	l, err := lab.Start(ctx, lab.Options{StateDir: *state, Lab: seed, Reset: *reset, Host: *host, KDCPort: *kdcPort, LDAPPort: *ldapPort, LDAPSPort: *ldapsPort, RPCPort: *rpcPort,
		WebPort: *webPort, SQLPort: *sqlPort, Logger: logger(stderr, *level), Capture: *pcap})
	if err != nil {
		return err
	}
	defer l.Close()
	printReady(stdout, l, time.Since(start))
	if *pcap != "" {
		kt := filepath.Join(*state, "lab.keytab")
		if _, err := lab.ExportAllKeytab(l.Store, kt); err == nil {
			fmt.Fprintf(stdout, "  wire view: tshark -r %s %s\n", *pcap, strings.Join(l.TsharkArgs(kt), " "))
		}
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "doublehop: stopping")
		return nil
	case err := <-l.Err():
		return err
	}
}

func printReady(w io.Writer, l *lab.Lab, took time.Duration) {
	fmt.Fprintf(w, "  kdc  %-22s realm %s (TCP+UDP)\n", l.KDCAddr, l.Realm)
	if l.LDAPAddr != "" {
		fmt.Fprintf(w, "  ldap %-22s dc.lab.local:389, DC=%s (doublehop client ldapsearch; ldaps on %s)\n", l.LDAPAddr,
			strings.ReplaceAll(strings.ToLower(l.Realm), ".", ",DC="), l.LDAPSAddr)
	}
	if l.RPCAddr != "" {
		fmt.Fprintf(w, "  rpc  %-22s dc.lab.local:135, the endpoint mapper; drsuapi (replication, DCSync) on %s\n", l.RPCAddr, l.DRSAddr)
	}
	if l.WebAddr != "" {
		fmt.Fprintf(w, "  web  %-22s %s  (runs as svc_iispool)\n", l.WebAddr, l.WebURL)
	}
	if l.SQLAddr != "" {
		fmt.Fprintf(w, "  sql  %-22s sql.lab.local:1433 (runs as svc_mssqlserver)\n", l.SQLAddr)
	}
	fmt.Fprintf(w, "doublehop: lab %s ready in %s — state %s; source %s for MIT tools\n", l.Realm, took.Round(time.Millisecond), l.StateDir, l.Env())
}
