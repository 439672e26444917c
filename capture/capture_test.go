package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/peer"
)

// ---- a tiny pcap reader, independent of the writer's code ----

type packet struct {
	ts       time.Time
	proto    uint8
	src, dst netip.AddrPort
	seq, ack uint32
	flags    uint8
	payload  []byte
}

func (p packet) String() string {
	return fmt.Sprintf("%v > %v %s seq=%d ack=%d len=%d", p.src, p.dst, flagString(p.flags), p.seq, p.ack, len(p.payload))
}

func flagString(f uint8) string {
	var s []string
	for _, x := range []struct {
		bit  uint8
		name string
	}{{flagSYN, "S"}, {flagFIN, "F"}, {flagRST, "R"}, {flagPSH, "P"}, {flagACK, "A"}} {
		if f&x.bit != 0 {
			s = append(s, x.name)
		}
	}
	return strings.Join(s, "")
}

// csum is the RFC 1071 Internet checksum of the concatenation of bs.
func csum(bs ...[]byte) uint16 {
	var all []byte
	for _, b := range bs {
		all = append(all, b...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint64
	for i := 0; i < len(all); i += 2 {
		s += uint64(binary.BigEndian.Uint16(all[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func readPcap(t *testing.T, path string) []packet {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 24 {
		t.Fatalf("pcap of %d bytes", len(data))
	}
	le := binary.LittleEndian
	if m := le.Uint32(data); m != 0xa1b2c3d4 {
		t.Fatalf("magic %#x", m)
	}
	if le.Uint16(data[4:]) != 2 || le.Uint16(data[6:]) != 4 || le.Uint32(data[20:]) != 101 {
		t.Fatalf("header % x", data[:24])
	}
	var out []packet
	var last time.Time
	for b := data[24:]; len(b) > 0; {
		if len(b) < 16 {
			t.Fatalf("truncated record header")
		}
		incl, orig := le.Uint32(b[8:]), le.Uint32(b[12:])
		usec := le.Uint32(b[4:])
		if incl != orig || usec >= 1e6 || int(incl) > len(b)-16 {
			t.Fatalf("record header % x", b[:16])
		}
		ts := time.Unix(int64(le.Uint32(b)), int64(usec)*1000)
		if ts.Before(last) {
			t.Errorf("timestamps go backwards: %v after %v", ts, last)
		}
		last = ts
		out = append(out, parseIP(t, b[16:16+incl], ts))
		b = b[16+incl:]
	}
	return out
}

func parseIP(t *testing.T, b []byte, ts time.Time) packet {
	t.Helper()
	be := binary.BigEndian
	var p packet
	p.ts = ts
	var l4 []byte
	var pseudo []byte
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&15) * 4
		if int(be.Uint16(b[2:])) != len(b) {
			t.Fatalf("ipv4 total length %d, record %d", be.Uint16(b[2:]), len(b))
		}
		if csum(b[:ihl]) != 0xffff {
			t.Errorf("bad ipv4 header checksum % x", b[:ihl])
		}
		p.proto = b[9]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
		pseudo = append(append(append([]byte{}, b[12:20]...), 0, p.proto), byte(len(l4)>>8), byte(len(l4)))
	case 6:
		if int(be.Uint16(b[4:]))+40 != len(b) {
			t.Fatalf("ipv6 payload length %d, record %d", be.Uint16(b[4:]), len(b))
		}
		p.proto = b[6]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
		pseudo = append(append([]byte{}, b[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, p.proto)
	default:
		t.Fatalf("IP version %d", b[0]>>4)
	}
	if csum(pseudo, l4) != 0xffff {
		t.Errorf("bad transport checksum (proto %d)", p.proto)
	}
	p.src = netip.AddrPortFrom(src, be.Uint16(l4[0:]))
	p.dst = netip.AddrPortFrom(dst, be.Uint16(l4[2:]))
	switch p.proto {
	case 6:
		p.seq, p.ack = be.Uint32(l4[4:]), be.Uint32(l4[8:])
		p.flags = l4[13]
		p.payload = l4[int(l4[12]>>4)*4:]
	case 17:
		if int(be.Uint16(l4[4:])) != len(l4) {
			t.Errorf("udp length %d, have %d", be.Uint16(l4[4:]), len(l4))
		}
		p.payload = l4[8:]
	default:
		t.Fatalf("protocol %d", p.proto)
	}
	return p
}

// checkTCP checks that the packets of one connection are a consistent TCP
// conversation: handshake first, every segment starting where the sender's
// last one ended, every ACK acknowledging exactly what the other side sent.
// It returns the bytes each endpoint sent.
func checkTCP(t *testing.T, pkts []packet) map[netip.AddrPort][]byte {
	t.Helper()
	if len(pkts) < 3 {
		t.Fatalf("%d packets", len(pkts))
	}
	if pkts[0].flags != flagSYN || pkts[1].flags != flagSYN|flagACK || pkts[2].flags != flagACK {
		t.Fatalf("no handshake: %v | %v | %v", pkts[0], pkts[1], pkts[2])
	}
	next := map[netip.AddrPort]uint32{pkts[0].src: pkts[0].seq, pkts[1].src: pkts[1].seq}
	sent := map[netip.AddrPort][]byte{}
	for i, p := range pkts {
		if p.proto != 6 {
			t.Fatalf("packet %d: protocol %d", i, p.proto)
		}
		if p.seq != next[p.src] {
			t.Errorf("packet %d (%v): seq %d, want %d", i, p, p.seq, next[p.src])
		}
		if p.flags&flagACK != 0 && p.ack != next[p.dst] {
			t.Errorf("packet %d (%v): ack %d, want %d", i, p, p.ack, next[p.dst])
		}
		if len(p.payload) > 65495 {
			t.Errorf("packet %d: segment of %d bytes", i, len(p.payload))
		}
		next[p.src] = p.seq + uint32(len(p.payload))
		if p.flags&(flagSYN|flagFIN) != 0 {
			next[p.src]++
		}
		sent[p.src] = append(sent[p.src], p.payload...)
	}
	return sent
}

// ---- servers ----

// echoServer serves one connection on a wrapped listener: it echoes until EOF,
// then writes extra (if any) and closes.
func echoServer(t *testing.T, w *Writer, network, addr string) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	wl := w.Listener(ln)
	done := make(chan error, 1)
	go func() {
		defer wl.Close()
		c, err := wl.Accept()
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(c, c)
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return ln.Addr().String(), done
}

func newCapture(t *testing.T) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lab.pcap")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

// echo sends msg, reads it back, half-closes and waits for the server's close.
func echo(t *testing.T, addr string, msg []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo differs")
	}
	c.(*net.TCPConn).CloseWrite()
	if n, err := c.Read(got[:1]); n != 0 || err != io.EOF {
		t.Fatalf("after close: %d %v", n, err)
	}
}

func TestEchoRecorded(t *testing.T) {
	w, path := newCapture(t)
	addr, done := echoServer(t, w, "tcp", "127.0.0.1:0")
	echo(t, addr, []byte("hello"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pkts := readPcap(t, path)
	var summary []string
	for _, p := range pkts {
		summary = append(summary, flagString(p.flags)+":"+string(p.payload))
	}
	want := "S: SA: A: PA:hello PA:hello FA: A: FA: A:"
	if got := strings.Join(summary, " "); got != want {
		t.Fatalf("packets\n got %s\nwant %s", got, want)
	}
	server := netip.MustParseAddrPort(addr)
	if pkts[0].dst != server || pkts[1].src != server || !pkts[0].src.Addr().IsLoopback() {
		t.Errorf("addresses: %v, %v (server %v)", pkts[0], pkts[1], server)
	}
	if pkts[3].src == server || pkts[4].src != server {
		t.Errorf("directions: %v, %v", pkts[3], pkts[4])
	}
	sent := checkTCP(t, pkts)
	if string(sent[server]) != "hello" || string(sent[pkts[0].src]) != "hello" {
		t.Errorf("payloads %q", sent)
	}
}

// A server reading one byte at a time still shows the client's message as
// one segment: the wrapper reads from the socket in chunks.
func TestSmallReadsCoalesced(t *testing.T) {
	w, path := newCapture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := w.Listener(ln)
	defer wl.Close()
	got := make(chan string, 1)
	go func() {
		c, err := wl.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		var all []byte
		b := make([]byte, 1)
		for {
			n, err := c.Read(b)
			all = append(all, b[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(all)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello world"))
	c.(*net.TCPConn).CloseWrite()
	if s := <-got; s != "hello world" {
		t.Fatalf("server read %q", s)
	}
	c.Close()
	wl.Close()
	w.Close()
	pkts := readPcap(t, path)
	checkTCP(t, pkts)
	var segs []string
	for _, p := range pkts {
		if len(p.payload) > 0 {
			segs = append(segs, string(p.payload))
		}
	}
	if len(segs) != 1 || segs[0] != "hello world" {
		t.Errorf("segments %q", segs)
	}
	if last := pkts[len(pkts)-1]; last.flags != flagACK || pkts[len(pkts)-2].flags != flagFIN|flagACK {
		t.Errorf("no FIN/ACK at the end: %v", pkts)
	}
}

// bigServer reads a request, answers with one large Write, and closes.
func bigServer(t *testing.T, w *Writer, size int) (string, []byte, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i * 7)
	}
	wl := w.Listener(ln)
	done := make(chan error, 1)
	go func() {
		defer wl.Close()
		c, err := wl.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write(big)
		done <- err
	}()
	return ln.Addr().String(), big, done
}

func TestLargeWriteSplit(t *testing.T) {
	w, path := newCapture(t)
	const size = 3<<20 + 12345
	addr, big, done := bigServer(t, w, size)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("give!"))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	pkts := readPcap(t, path)
	sent := checkTCP(t, pkts)
	server := netip.MustParseAddrPort(addr)
	if !bytes.Equal(sent[server], big) {
		t.Errorf("server sent %d bytes in the capture, want %d", len(sent[server]), size)
	}
	full, acks := 0, 0
	for _, p := range pkts {
		if len(p.payload) == 65495 {
			full++
		}
		if p.dst == server && p.flags == flagACK {
			acks++
		}
	}
	if full != size/65495 {
		t.Errorf("%d full segments, want %d", full, size/65495)
	}
	// handshake ACK, a bulk ACK once at least 1 MiB is unacknowledged (every
	// 17 full segments: 2 in 3 MiB), ACK of the server's FIN
	if acks != 4 {
		t.Errorf("%d pure ACKs from the client, want 4", acks)
	}
	tsharkClean(t, path)
}

func TestIPv6(t *testing.T) {
	w, path := newCapture(t)
	addr, done := echoServer(t, w, "tcp6", "[::1]:0")
	echo(t, addr, []byte("hello over v6"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	pkts := readPcap(t, path)
	if !pkts[0].src.Addr().Is6() {
		t.Errorf("not IPv6: %v", pkts[0])
	}
	checkTCP(t, pkts)
	tsharkClean(t, path)
}

func TestConnAndDedup(t *testing.T) {
	w, path := newCapture(t)
	addr, done := echoServer(t, w, "tcp", "127.0.0.1:0")
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := w.Conn(raw)
	// The listener side may not have claimed the flow yet; either way exactly
	// one side is recorded.
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	pkts := readPcap(t, path)
	syns := 0
	for _, p := range pkts {
		if p.flags&flagSYN != 0 && p.flags&flagACK == 0 {
			syns++
		}
	}
	if syns != 1 {
		t.Fatalf("%d SYNs, want 1: %v", syns, pkts)
	}
	sent := checkTCP(t, pkts)
	if string(sent[pkts[0].src]) != "ping" || string(sent[pkts[0].dst]) != "ping" {
		t.Errorf("payloads %q", sent)
	}
	// Not TCP over IP: passed through.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if w.Conn(p1) != p1 {
		t.Errorf("a pipe was wrapped")
	}
}

func TestDeadlinesAndDoubleClose(t *testing.T) {
	w, _ := newCapture(t)
	defer w.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := w.Listener(ln)
	defer wl.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err == nil {
		t.Errorf("second Close did not reach the conn")
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteFailureDisablesCapture(t *testing.T) {
	w, err := NewWriter(&failAfter{n: 200})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	w.SetLogger(slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil)))
	addr, done := echoServer(t, w, "tcp", "127.0.0.1:0")
	for range 3 {
		echo(t, addr, bytes.Repeat([]byte("x"), 1000))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		addr, done = echoServer(t, w, "tcp", "127.0.0.1:0")
	}
	if w.Err() == nil {
		t.Fatal("no error recorded")
	}
	if err := w.Close(); err == nil {
		t.Errorf("Close hides the write error")
	}
	logMu.Lock()
	defer logMu.Unlock()
	if n := strings.Count(logs.String(), "capture disabled"); n != 1 {
		t.Errorf("logged %d times:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestConcurrentConns records many connections at once; run with -race.
func TestConcurrentConns(t *testing.T) {
	w, path := newCapture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := w.Listener(ln)
	var srv sync.WaitGroup
	srv.Go(func() {
		for {
			c, err := wl.Accept()
			if err != nil {
				return
			}
			srv.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	const conns = 8
	var cli sync.WaitGroup
	for i := range conns {
		cli.Go(func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range 20 {
				msg := fmt.Appendf(nil, "conn %d msg %d", i, j)
				c.Write(msg)
				if _, err := io.ReadFull(c, msg); err != nil {
					t.Error(err)
					return
				}
			}
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		})
	}
	cli.Wait()
	wl.Close()
	srv.Wait()
	w.Close()
	byConn := map[flow][]packet{}
	for _, p := range readPcap(t, path) {
		f := newFlow(p.src, p.dst)
		byConn[f] = append(byConn[f], p)
	}
	if len(byConn) != conns {
		t.Fatalf("%d connections in the capture, want %d", len(byConn), conns)
	}
	for _, pkts := range byConn {
		checkTCP(t, pkts)
	}
	tsharkClean(t, path)
}

// ---- tshark ----

func tshark(t *testing.T, args ...string) string {
	t.Helper()
	bin := peer.Need1(t, "tshark")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// tsharkClean asserts that tshark finds no TCP analysis flag (previous segment
// not captured, retransmission, ACKed unseen segment, window full, ...), no
// bad checksum with validation on, no malformed packet and no expert warning.
func tsharkClean(t *testing.T, path string) {
	t.Helper()
	out := tshark(t, "-r", path, "-n",
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-Y", "tcp.analysis.flags || ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || _ws.malformed || _ws.expert.severity >= warning")
	if strings.TrimSpace(out) != "" {
		t.Errorf("tshark complains:\n%s", out)
	}
}

func TestTsharkFollowsStream(t *testing.T) {
	w, path := newCapture(t)
	addr, done := echoServer(t, w, "tcp", "127.0.0.1:0")
	echo(t, addr, []byte("hello"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	tsharkClean(t, path)
	out := tshark(t, "-r", path, "-n", "-T", "fields", "-e", "tcp.stream", "-e", "tcp.flags.str", "-e", "tcp.len", "-e", "data")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9 {
		t.Fatalf("tshark sees %d packets:\n%s", len(lines), out)
	}
	hello := fmt.Sprintf("%x", "hello")
	if !strings.HasSuffix(lines[3], "\t5\t"+hello) || !strings.HasSuffix(lines[4], "\t5\t"+hello) {
		t.Errorf("data packets:\n%s", out)
	}
	// Reassembly: both directions of stream 0, in order.
	out = tshark(t, "-r", path, "-n", "-q", "-z", "follow,tcp,raw,0")
	_, port, _ := net.SplitHostPort(addr)
	if !strings.Contains(out, ":"+port) || strings.Count(out, hello) != 2 {
		t.Errorf("follow:\n%s", out)
	}
}

func TestTsharkHTTP(t *testing.T) {
	w, path := newCapture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "hello %s\n", r.URL.Path)
	})}
	go srv.Serve(w.Listener(ln))
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	for range 2 { // two requests on one keep-alive connection
		resp, err := client.Get("http://" + ln.Addr().String() + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	w.Close()
	tsharkClean(t, path)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	out := tshark(t, "-r", path, "-n", "-d", "tcp.port=="+port+",http", "-Y", "http.request",
		"-T", "fields", "-e", "http.request.method", "-e", "http.request.uri")
	if out != "GET\t/hello\nGET\t/hello\n" {
		t.Errorf("http requests: %q", out)
	}
	out = tshark(t, "-r", path, "-n", "-d", "tcp.port=="+port+",http", "-Y", "http.response",
		"-T", "fields", "-e", "http.response.code", "-e", "http.response_for.uri")
	if strings.Count(out, "200\thttp://") != 2 {
		t.Errorf("http responses: %q", out)
	}
}

func TestTsharkUDP(t *testing.T) {
	w, path := newCapture(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wpc := w.PacketConn(pc)
	defer wpc.Close()
	go func() {
		buf := make([]byte, 2048)
		n, from, err := wpc.ReadFrom(buf)
		if err != nil {
			return
		}
		wpc.WriteTo(append([]byte("pong:"), buf[:n]...), from)
	}()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "pong:ping" {
		t.Fatalf("reply %q %v", buf[:n], err)
	}
	w.Close()

	pkts := readPcap(t, path)
	server := netip.MustParseAddrPort(pc.LocalAddr().String())
	clientAP := netip.MustParseAddrPort(c.LocalAddr().String())
	if len(pkts) != 2 || pkts[0].src != clientAP || pkts[0].dst != server || pkts[1].src != server || pkts[1].dst != clientAP ||
		string(pkts[0].payload) != "ping" || string(pkts[1].payload) != "pong:ping" {
		t.Fatalf("packets %v", pkts)
	}
	tsharkClean(t, path)
	sp, cp := strconv.Itoa(int(server.Port())), strconv.Itoa(int(clientAP.Port()))
	out := tshark(t, "-r", path, "-n", "-d", "udp.port=="+sp+",kerberos", "-Y", "udp",
		"-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.length")
	if want := cp + "\t" + sp + "\t12\n" + sp + "\t" + cp + "\t17\n"; out != want {
		t.Errorf("tshark udp:\n%s\nwant\n%s", out, want)
	}
}
