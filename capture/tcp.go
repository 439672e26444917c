package capture

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// Listener returns ln whose accepted connections are recorded: each one starts
// with a three-way handshake from the client (the remote address) to the
// server (the local address). Close and Addr are ln's own. The returned
// connections implement net.Conn only (not *net.TCPConn): Read, Write and
// Close are recorded, deadlines and addresses pass through.
func (w *Writer) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, w: w}
}

type listener struct {
	net.Listener
	w *Writer
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return l.w.track(c, false), nil
}

// Conn returns c recorded as a connection that the local side opened (the
// handshake goes from c.LocalAddr to c.RemoteAddr): use it for a client's
// dialed connection. A connection whose other end this Writer already records
// (both ends in one process) is returned unwrapped, so no packet is written
// twice. Connections that are not TCP over IP, and any connection once the
// Writer is closed or disabled, are returned unwrapped.
func (w *Writer) Conn(c net.Conn) net.Conn { return w.track(c, true) }

// Window advertised by both sides. With a window scale of windowShift the
// receive window is 65535<<7 ≈ 8 MiB, and the receiver acknowledges at least
// every ackEvery bytes, so Wireshark never sees a full window.
const (
	window      = 0xffff
	windowShift = 7
	ackEvery    = 1 << 20
)

// synOptions returns the options of SYN segments: MSS (kind 2, RFC 9293
// §3.2) = maxSegment, NOP, window scale (kind 3, RFC 7323 §2) = windowShift.
// 8 bytes, a multiple of 4.
func synOptions() []byte {
	return []byte{2, 4, maxSegment >> 8, maxSegment & 0xff, 1, 3, 3, windowShift}
}

// Sides of a recorded connection.
const (
	local  = 0
	remote = 1
)

// conn records a TCP connection. Embedding passes LocalAddr, RemoteAddr and
// the deadlines through; Read, Write and Close are recorded.
type conn struct {
	net.Conn
	w    *Writer
	flow flow

	mu    sync.Mutex // orders records with sequence numbers; never held during I/O
	ep    [2]netip.AddrPort
	seq   [2]uint32 // next sequence number each side sends
	acked [2]uint32 // the last acknowledgement each side sent
	id    [2]uint16 // IPv4 identification, per side
	fin   [2]bool   // the side has sent FIN (or the connection was reset)
	done  bool      // nothing more is recorded

	rmu  sync.Mutex // serializes Reads and guards the read buffer
	rbuf []byte     // bytes read from the socket, not yet returned: rbuf[rpos:]
	rpos int
	rerr error // error that came with buffered bytes, returned after them
}

// track wraps c if it is a TCP connection over IP and nobody records it yet,
// and writes its handshake.
func (w *Writer) track(c net.Conn, dialed bool) net.Conn {
	la, ok1 := c.LocalAddr().(*net.TCPAddr)
	ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || la == nil || ra == nil {
		return c
	}
	lap, rap := la.AddrPort(), ra.AddrPort()
	l, r := sameFamily(lap.Addr(), rap.Addr())
	lap, rap = netip.AddrPortFrom(l, lap.Port()), netip.AddrPortFrom(r, rap.Port())
	f := newFlow(lap, rap)
	if !w.claim(f) {
		return c
	}
	tc := &conn{Conn: c, w: w, flow: f, ep: [2]netip.AddrPort{lap, rap}}
	tc.id = [2]uint16{uint16(rand.Uint32()), uint16(rand.Uint32())}
	tc.seq = [2]uint32{rand.Uint32(), rand.Uint32()}
	client, server := remote, local
	if dialed {
		client, server = local, remote
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	opts := synOptions()
	tc.segment(client, flagSYN, opts, nil)
	tc.segment(server, flagSYN|flagACK, opts, nil)
	tc.segment(client, flagACK, nil, nil)
	return tc
}

// segment records one segment from side, with the current sequence and
// acknowledgement numbers, and advances the sender's sequence number. Callers
// hold c.mu.
func (c *conn) segment(from int, flags uint8, opts, payload []byte) {
	to := 1 - from
	var ack uint32
	if flags&flagACK != 0 {
		ack = c.seq[to]
		c.acked[from] = ack
	}
	c.id[from]++
	hdr := tcpSegment(c.ep[from], c.ep[to], c.seq[from], ack, flags, window, opts, payload, c.id[from])
	c.w.record(hdr, payload)
	c.seq[from] += uint32(len(payload))
	if flags&(flagSYN|flagFIN) != 0 {
		c.seq[from]++ // SYN and FIN each take one sequence number
	}
}

// data records p sent by side from, split into segments of at most
// maxSegment bytes, PSH on the last one, as one Read or Write delivered it.
func (c *conn) data(from int, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.fin[from] || !c.w.active() {
		return
	}
	for len(p) > 0 {
		n := min(len(p), maxSegment)
		flags := uint8(flagACK)
		if n == len(p) {
			flags |= flagPSH
		}
		c.segment(from, flags, nil, p[:n])
		p = p[n:]
		// The receiver acknowledges bulk data (a real stack would do it every
		// other segment; once a MiB keeps the file small and the window open).
		if to := 1 - from; c.seq[from]-c.acked[to] >= ackEvery {
			c.segment(to, flagACK, nil, nil)
		}
	}
}

// readChunk is the size of the read buffer used when the caller reads in
// small pieces (a server that reads a 1-byte type then a 7-byte header would
// otherwise show as tiny segments that the client never sent): the segment
// recorded is what one read from the socket returned, at most readChunk bytes.
const readChunk = 16 << 10

// Read records what the peer sent. A read of io.EOF is the peer's FIN (and our
// ACK of it); a reset connection is the peer's RST.
func (c *conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rpos < len(c.rbuf) {
		n := copy(b, c.rbuf[c.rpos:])
		c.rpos += n
		return n, nil
	}
	if c.rerr != nil {
		err := c.rerr
		c.rerr = nil
		return 0, err
	}
	if len(b) >= readChunk || len(b) == 0 {
		n, err := c.Conn.Read(b)
		c.received(b[:n], err)
		return n, err
	}
	if cap(c.rbuf) == 0 {
		c.rbuf = make([]byte, readChunk)
	}
	m, err := c.Conn.Read(c.rbuf[:readChunk])
	c.received(c.rbuf[:m], err)
	n := copy(b, c.rbuf[:m])
	c.rbuf, c.rpos = c.rbuf[:m], n
	if n < m && err != nil {
		c.rerr, err = err, nil // returned once the buffered bytes are read
	}
	return n, err
}

// received records one read from the socket.
func (c *conn) received(p []byte, err error) {
	if len(p) > 0 {
		c.data(remote, p)
	}
	switch {
	case err == nil:
	case err == io.EOF:
		c.peerClosed(false)
	case errors.Is(err, syscall.ECONNRESET):
		c.peerClosed(true)
	}
}

// Write records b before writing it, so the capture shows a request's
// response before anything the peer sends after reading it. If the write
// fails part way, the capture shows more than the peer received.
func (c *conn) Write(b []byte) (int, error) {
	c.data(local, b)
	return c.Conn.Write(b)
}

func (c *conn) peerClosed(reset bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.fin[remote] {
		return
	}
	if reset {
		c.segment(remote, flagRST|flagACK, nil, nil)
		c.finish()
		return
	}
	c.segment(remote, flagFIN|flagACK, nil, nil)
	c.segment(local, flagACK, nil, nil)
	c.fin[remote] = true
	if c.fin[local] {
		c.finish()
	}
}

// Close records our FIN and the peer's acknowledgement of it, then closes the
// connection. Closing again is passed through but not recorded.
func (c *conn) Close() error {
	c.mu.Lock()
	if !c.done && !c.fin[local] {
		c.segment(local, flagFIN|flagACK, nil, nil)
		c.segment(remote, flagACK, nil, nil)
		c.fin[local] = true
	}
	c.finish()
	c.mu.Unlock()
	return c.Conn.Close()
}

// finish stops recording the connection. Callers hold c.mu.
func (c *conn) finish() {
	if !c.done {
		c.done = true
		c.w.release(c.flow)
	}
}
