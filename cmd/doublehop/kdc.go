package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/kdc"
	"github.com/doublehop/doublehop/ldapserver"
	"github.com/doublehop/doublehop/netlogon"
)

func init() {
	register("kdc", "run the KDC alone (UDP and TCP) on the state's directory", cmdKDC)
}

func cmdKDC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kdc", "kdc [--state DIR] [--seed FILE] [--listen ADDR] [--netlogon-listen ADDR] [--ldap-listen ADDR] [--ldaps-listen ADDR] [--events FILE|-]", stderr)
	tf := addTierFlags(fs, "kdc", ":88", "dc.lab.local", "state directory holding directory.yaml")
	nlListen := fs.String("netlogon-listen", ":445", "the DC's Netlogon service (NTLM pass-through for the member servers); \"\" = off")
	ldapListen := fs.String("ldap-listen", ":389", "the DC's LDAP service (the directory with AD's shape; GSSAPI, GSS-SPNEGO and NTLM binds); \"\" = off")
	ldapsListen := fs.String("ldaps-listen", ":636", "the DC's LDAP over TLS (a self-signed certificate for --host); \"\" = off")
	seedFile := fs.String("seed", "", "a lab file to start from when the state holds no directory yet (a workshop seat's provisioned directory); default: the default lab")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	var err error
	var seed *directory.Lab
	if *seedFile != "" {
		if seed, err = directory.ReadFile(*seedFile); err != nil {
			return err
		}
	}
	store, err := directory.Open(*tf.state, seed)
	if err != nil {
		return err
	}
	sink, closeSink, err := tf.sink(stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	k := kdc.New(kdc.Config{Directory: store, Events: sink, Logger: tf.logger(stderr), Host: *tf.host})
	tcp, err := net.Listen("tcp", *tf.listen)
	if err != nil {
		return err
	}
	udp, err := net.ListenPacket("udp", tcp.Addr().String())
	if err != nil {
		tcp.Close()
		return err
	}
	errs := make(chan error, 5)
	n := 2
	go func() { errs <- k.Serve(ctx, tcp) }()
	go func() { errs <- k.ServePacket(ctx, udp) }()
	nlAddr, ldapAddr := "off", "off"
	var nl *netlogon.Server
	if *nlListen != "" {
		ln, err := net.Listen("tcp", *nlListen)
		if err != nil {
			tcp.Close()
			udp.Close()
			return fmt.Errorf("netlogon: %w", err)
		}
		nlAddr = ln.Addr().String()
		nl = netlogon.New(netlogon.Config{Directory: store, Host: *tf.host, Events: sink, Logger: tf.logger(stderr)})
		n++
		go func() { errs <- nl.Serve(ctx, ln) }()
	}
	if *ldapListen != "" {
		cfg := ldapserver.Config{Directory: store, Host: *tf.host, Events: sink, Logger: tf.logger(stderr)}
		if nl != nil {
			cfg.NTLM = nl
		}
		srv, err := ldapserver.New(cfg)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *ldapListen)
		if err != nil {
			tcp.Close()
			udp.Close()
			return fmt.Errorf("ldap: %w", err)
		}
		ldapAddr = ln.Addr().String()
		n++
		go func() { errs <- srv.Serve(ctx, ln) }()
		if *ldapsListen != "" {
			tln, err := net.Listen("tcp", *ldapsListen)
			if err != nil {
				return fmt.Errorf("ldaps: %w", err)
			}
			ldapAddr += " ldaps=" + tln.Addr().String()
			n++
			go func() { errs <- srv.ServeLDAPS(ctx, tln) }()
		}
	}
	fmt.Fprintf(stderr, "kdc: ready realm=%s listen=%s netlogon=%s ldap=%s\n", store.View().Lab.Realm, tcp.Addr(), nlAddr, ldapAddr)
	select {
	case <-ctx.Done():
		for i := 0; i < n; i++ {
			<-errs
		}
		return nil
	case err := <-errs:
		return err
	}
}
