// Package accept is the accept loop the lab's TCP servers share: a
// connection cap, one goroutine per connection, shutdown that ends idle
// connections, and a recovered panic logged instead of a crashed server.
package accept

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Loop accepts connections from ln until ctx ends. At most max are served at
// once; one more is handed to refuse (which may write a last word) and
// closed. handle runs in its own goroutine; the connection is closed when it
// returns or when ctx ends. Loop returns once every connection has ended.
func Loop(ctx context.Context, ln net.Listener, max int, lg *slog.Logger, name string, refuse, handle func(net.Conn)) error {
	go func() { <-ctx.Done(); ln.Close() }()
	slots := make(chan struct{}, max)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			if refuse != nil {
				refuse(c)
			}
			c.Close() // over the connection cap
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer c.Close()
			defer context.AfterFunc(ctx, func() { c.Close() })() // shutdown ends idle connections
			defer func() {
				if r := recover(); r != nil {
					lg.Error(name+": panic recovered", "peer", c.RemoteAddr().String(), "panic", fmt.Sprint(r))
				}
			}()
			handle(c)
		}()
	}
}
