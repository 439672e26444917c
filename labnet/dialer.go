// Package labnet maps the lab's host names to real addresses, like curl's
// --resolve or a hosts file: in the embedded lab web.lab.local:80 is
// 127.0.0.1:<port>, so SPNs stay real host names while everything runs on
// loopback. Any tier may use it; it knows no tier.
package labnet

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Dialer dials through a host:port → address map and falls back to the
// network for names it does not know.
type Dialer struct {
	mu  sync.RWMutex
	m   map[string]string
	net net.Dialer
}

// New makes a dialer from "host:port=addr" entries (one address) and
// "host=ip" entries (every port of the host, like a hosts file). An address
// may be a name the network resolves itself: a Kubernetes Service ("dc"
// for dc.lab.local in a seat's namespace).
func New(entries ...string) (*Dialer, error) {
	d := &Dialer{m: map[string]string{}, net: net.Dialer{Timeout: 5 * time.Second}}
	for _, e := range entries {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("resolve entry %q: want host:port=addr", e)
		}
		d.Map(k, v)
	}
	return d, nil
}

// NewEmpty makes a dialer with no mappings.
func NewEmpty() *Dialer { d, _ := New(); return d }

// Map adds or replaces one mapping.
func (d *Dialer) Map(hostport, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]string{}
	}
	d.m[strings.ToLower(hostport)] = addr
}

// Resolve returns the address for hostport (itself when unmapped).
func (d *Dialer) Resolve(hostport string) string {
	if d == nil {
		return hostport
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if a, ok := d.m[strings.ToLower(hostport)]; ok {
		return a
	}
	if host, port, err := net.SplitHostPort(hostport); err == nil {
		if ip, ok := d.m[strings.ToLower(host)]; ok {
			return net.JoinHostPort(ip, port)
		}
	}
	return hostport
}

// ReadHosts adds "ip name..." lines of a hosts-format file's contents.
func (d *Dialer) ReadHosts(text string) {
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		for _, name := range f[min(1, len(f)):] {
			d.Map(name, f[0])
		}
	}
}

// Entries lists the mappings as host:port=addr.
func (d *Dialer) Entries() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for k, v := range d.m {
		out = append(out, k+"="+v)
	}
	return out
}

// DialContext implements the dialer interfaces of net/http, go-mssqldb and krb.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.net.DialContext(ctx, network, d.Resolve(addr))
}

// HostName makes go-mssqldb hand the unresolved host name to DialContext
// (go-mssqldb's HostDialer), so the map applies before DNS.
func (d *Dialer) HostName() string { return "" }
