package labnet

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	d, err := New("sql.lab.local:1433=127.0.0.1:51433", "web.lab.local=127.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"sql.lab.local:1433": "127.0.0.1:51433", // host:port entry
		"SQL.Lab.Local:1433": "127.0.0.1:51433", // names are case-insensitive
		"sql.lab.local:1434": "sql.lab.local:1434",
		"web.lab.local:80":   "127.0.0.7:80", // host entry: every port
		"web.lab.local:8080": "127.0.0.7:8080",
		"dc.lab.local:88":    "dc.lab.local:88", // unknown: to the network
	} {
		if got := d.Resolve(in); got != want {
			t.Errorf("Resolve(%s) = %s, want %s", in, got, want)
		}
	}
	var nilD *Dialer
	if nilD.Resolve("x:1") != "x:1" {
		t.Error("a nil dialer maps something")
	}
	if _, err := New("no-equals-sign"); err == nil {
		t.Error("an entry without = accepted")
	}
}

func TestReadHosts(t *testing.T) {
	d := NewEmpty()
	d.ReadHosts("# lab hosts\n172.20.0.2 dc.lab.local dc   # the DC\n\n172.20.0.3\tweb.lab.local web\n")
	for in, want := range map[string]string{"dc:88": "172.20.0.2:88", "web.lab.local:80": "172.20.0.3:80", "sql:1433": "sql:1433"} {
		if got := d.Resolve(in); got != want {
			t.Errorf("Resolve(%s) = %s, want %s", in, got, want)
		}
	}
	got := d.Entries()
	slices.Sort(got)
	if want := []string{"dc.lab.local=172.20.0.2", "dc=172.20.0.2", "web.lab.local=172.20.0.3", "web=172.20.0.3"}; !slices.Equal(got, want) {
		t.Errorf("Entries = %v, want %v", got, want)
	}
}

// A lab name dials the loopback listener it is mapped to.
func TestDialContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			io.WriteString(c, "hello from web")
			c.Close()
		}
	}()
	d := NewEmpty()
	d.Map("web.lab.local:80", ln.Addr().String())
	c, err := d.DialContext(context.Background(), "tcp", "web.lab.local:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	if string(b) != "hello from web" {
		t.Fatalf("read %q", b)
	}
	if d.HostName() != "" {
		t.Error("HostName must be empty so go-mssqldb hands the name to DialContext")
	}
}
