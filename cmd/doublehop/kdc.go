package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/kdc"
	"github.com/doublehop/doublehop/lab"
)

func init() {
	register("kdc", "run the KDC alone (UDP and TCP) on the state's directory", cmdKDC)
}

func cmdKDC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kdc", "kdc [--state DIR] [--listen ADDR] [--events FILE|-]", stderr)
	state := fs.String("state", defaultState(), "state directory holding directory.yaml")
	listen := fs.String("listen", ":88", "TCP and UDP listen address")
	evPath := fs.String("events", "", "event log (JSON lines); \"-\" for stdout; default STATE/events/kdc.jsonl")
	host := fs.String("host", "dc.lab.local", "host name used in events")
	level := fs.String("log-level", "info", "log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	store, err := directory.Open(*state, nil)
	if err != nil {
		return err
	}
	sink, closeSink, err := openSink(*evPath, filepath.Join(*state, lab.EventsDir, "kdc.jsonl"), stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	k := kdc.New(kdc.Config{Directory: store, Events: sink, Logger: logger(stderr, *level), Host: *host})
	tcp, err := net.Listen("tcp", *listen)
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

// openSink opens an event log: "-" is stdout (container logs), "" the default path.
func openSink(path, def string, stdout io.Writer) (events.Sink, func() error, error) {
	if path == "-" {
		return events.NewJSONWriter(stdout), func() error { return nil }, nil
	}
	if path == "" {
		path = def
	}
	w, err := events.OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	return w, w.Close, nil
}
