// Package capture records the lab's own traffic, as its servers see it, into a
// classic libpcap file that Wireshark and tshark open directly.
//
// Nothing is sniffed: a server wraps its listener (Writer.Listener), its UDP
// socket (Writer.PacketConn) or a dialed connection (Writer.Conn), and every
// byte it reads or writes is written to the file as a synthetic IPv4 or IPv6
// packet with the connection's real addresses and ports. TCP connections get a
// three-way handshake when they are accepted (or wrapped), data segments with
// consistent sequence and acknowledgement numbers, and FIN/ACK when either side
// closes, so Wireshark's stream analysis and reassembly ("Follow TCP Stream")
// work as on a real capture. No privileges are needed and the result is
// deterministic up to timestamps, initial sequence numbers and ports.
//
// Recording never breaks the connection it watches: if the file cannot be
// written, capture stops (logged once) and the connections carry on.
//
// Formats:
//   - pcap: https://wiki.wireshark.org/Development/LibpcapFileFormat
//     (classic format, magic 0xa1b2c3d4, version 2.4, microsecond timestamps),
//     link type LINKTYPE_RAW (101, https://www.tcpdump.org/linktypes.html):
//     each record starts with the IP header, version 4 or 6.
//   - IPv4: RFC 791 (header checksum RFC 1071); IPv6: RFC 8200.
//   - TCP: RFC 793 / RFC 9293, options MSS (kind 2) and window scale (RFC 7323).
//   - UDP: RFC 768.
package capture

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"
)

// pcap file constants (https://wiki.wireshark.org/Development/LibpcapFileFormat).
const (
	pcapMagic        = 0xa1b2c3d4 // microsecond timestamps
	pcapVersionMajor = 2
	pcapVersionMinor = 4
	pcapSnaplen      = 262144 // Wireshark's default; larger than any packet we write
	linktypeRaw      = 101    // LINKTYPE_RAW: raw IPv4/IPv6, no link-layer header
	pcapFileHeader   = 24
	pcapRecordHeader = 16
)

// Writer is a pcap file shared by several listeners, sockets and connections.
// It is safe for concurrent use: each packet is one record, written whole
// under a lock and flushed, so the file on disk is always readable up to its
// last packet (tshark can read it while the lab runs).
type Writer struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	file   io.Closer // the file opened by Create, closed by Close
	err    error     // first write error; capture is disabled once set
	closed bool
	log    *slog.Logger
	flows  map[flow]struct{} // TCP connections being recorded (see track)
}

// Create creates (or truncates) the pcap file at path.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w, err := NewWriter(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.file = f
	return w, nil
}

// NewWriter writes a pcap stream to out, starting with the file header. Close
// flushes but does not close out.
func NewWriter(out io.Writer) (*Writer, error) {
	var h [pcapFileHeader]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], pcapMagic)
	le.PutUint16(h[4:], pcapVersionMajor)
	le.PutUint16(h[6:], pcapVersionMinor)
	// h[8:16]: thiszone and sigfigs, always 0.
	le.PutUint32(h[16:], pcapSnaplen)
	le.PutUint32(h[20:], linktypeRaw)
	bw := bufio.NewWriterSize(out, 64<<10)
	if _, err := bw.Write(h[:]); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return &Writer{bw: bw, flows: make(map[flow]struct{})}, nil
}

// SetLogger sets where the Writer reports that capture was disabled by a
// write error (once). Without a logger nothing is logged.
func (w *Writer) SetLogger(l *slog.Logger) {
	w.mu.Lock()
	w.log = l
	w.mu.Unlock()
}

// Err returns the write error that disabled capture, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops recording, flushes and closes the file opened by Create. The
// wrapped connections keep working; they are simply no longer recorded. It
// returns the error that disabled capture earlier, if any, so a caller learns
// the file is incomplete.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.bw.Flush()
	}
	if w.file != nil {
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// active reports whether packets are still being recorded.
func (w *Writer) active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.closed && w.err == nil
}

// record writes one packet: hdr (IP and transport headers) followed by
// payload. The timestamp is taken under the lock, so timestamps never go
// backwards in the file.
func (w *Writer) record(hdr, payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return
	}
	now := time.Now()
	n := uint32(len(hdr) + len(payload))
	var rh [pcapRecordHeader]byte
	le := binary.LittleEndian
	le.PutUint32(rh[0:], uint32(now.Unix()))
	le.PutUint32(rh[4:], uint32(now.Nanosecond()/1000))
	le.PutUint32(rh[8:], n)  // incl_len: never truncated (n <= pcapSnaplen)
	le.PutUint32(rh[12:], n) // orig_len
	w.bw.Write(rh[:])
	w.bw.Write(hdr)
	w.bw.Write(payload)
	// bufio.Writer keeps its first error, so checking Flush covers the writes.
	if err := w.bw.Flush(); err != nil {
		w.err = err
		if w.log != nil {
			w.log.Warn("capture: writing the pcap failed; capture disabled, connections unaffected", "err", err)
		}
	}
}

// flow identifies a TCP connection regardless of direction.
type flow struct{ a, b netip.AddrPort }

func newFlow(x, y netip.AddrPort) flow {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return flow{x, y}
}

// claim registers a TCP connection about to be recorded. It returns false when
// the same connection is already recorded by this Writer (both ends of a
// loopback connection wrapped, e.g. the web tier's dialed SQL connection and
// the SQL tier's listener): the second end is then passed through unrecorded,
// since the file would otherwise hold every packet twice.
func (w *Writer) claim(f flow) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return false
	}
	if _, ok := w.flows[f]; ok {
		return false
	}
	w.flows[f] = struct{}{}
	return true
}

func (w *Writer) release(f flow) {
	w.mu.Lock()
	delete(w.flows, f)
	w.mu.Unlock()
}
