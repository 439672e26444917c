package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

func init() {
	register("probe", "exit 0 when every address answers (a container's health check)", cmdProbe)
}

// cmdProbe is the health check of a tier in an image with nothing but this
// binary: a TCP connect to each address, or an HTTP GET that must answer 200.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("probe", "probe [--http PATH] [--timeout D] HOST:PORT...", stderr)
	path := fs.String("http", "", "GET this path on each address and require 200 (the web tier's /healthz)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up on an address after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no address to probe")
	}
	for _, addr := range fs.Args() {
		if err := probe(ctx, addr, *path, *timeout); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	return nil
}

func probe(ctx context.Context, addr, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if path == "" {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}
