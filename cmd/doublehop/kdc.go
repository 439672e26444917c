package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/kdc"
)

func init() {
	register("kdc", "run the KDC alone (UDP and TCP) on the state's directory", cmdKDC)
}

func cmdKDC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kdc", "kdc [--state DIR] [--listen ADDR] [--events FILE|-]", stderr)
	tf := addTierFlags(fs, "kdc", ":88", "dc.lab.local", "state directory holding directory.yaml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	store, err := directory.Open(*tf.state, nil)
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
	errs := make(chan error, 2)
	go func() { errs <- k.Serve(ctx, tcp) }()
	go func() { errs <- k.ServePacket(ctx, udp) }()
	fmt.Fprintf(stderr, "kdc: ready realm=%s listen=%s\n", store.View().Lab.Realm, tcp.Addr())
	select {
	case <-ctx.Done():
		<-errs
		<-errs
		return nil
	case err := <-errs:
		return err
	}
}
