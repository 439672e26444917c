package sqltier

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/doublehop/doublehop/sqltier/tds"
)

// prelogTLS carries TLS records inside PRELOGIN (0x12) packets while the
// handshake runs, then passes bytes straight to the socket (MS-TDS 3.3.5.2
// "TLS/SSL negotiation"; go-mssqldb net.go tlsHandshakeConn is the client
// side). Writes are buffered and sent as one TDS message when the TLS stack
// next reads, so each flight is one message, as the client expects.
type prelogTLS struct {
	net.Conn               // the raw socket: addresses, deadlines, post-handshake I/O
	r          *tds.Reader // reads PRELOGIN messages from the raw socket
	spid       uint16
	handshake  bool
	rbuf, wbuf []byte
}

func (p *prelogTLS) Read(b []byte) (int, error) {
	if !p.handshake {
		return p.Conn.Read(b)
	}
	if err := p.flush(); err != nil {
		return 0, err
	}
	if len(p.rbuf) == 0 {
		m, err := p.r.ReadMessage()
		if err != nil {
			return 0, err
		}
		if m.Type != tds.PacketPrelogin {
			return 0, fmt.Errorf("%w: %v during the TLS handshake", tds.ErrUnexpectedType, m.Type)
		}
		p.rbuf = append(p.rbuf[:0], m.Data...)
		if len(p.rbuf) == 0 {
			return 0, errors.New("sqltier: empty TLS handshake packet")
		}
	}
	n := copy(b, p.rbuf)
	p.rbuf = p.rbuf[n:]
	return n, nil
}

func (p *prelogTLS) Write(b []byte) (int, error) {
	if !p.handshake {
		return p.Conn.Write(b)
	}
	p.wbuf = append(p.wbuf, b...)
	return len(b), nil
}

// flush sends the buffered flight as one PRELOGIN message. The client's
// packet size is unknown until LOGIN7 and go-mssqldb refuses packets larger
// than its own (packet size=512 is legal), so handshake packets use the
// smallest size.
func (p *prelogTLS) flush() error {
	if len(p.wbuf) == 0 {
		return nil
	}
	out := tds.AppendPackets(nil, tds.PacketPrelogin, p.spid, tds.MinPacketSize, p.wbuf)
	p.wbuf = p.wbuf[:0]
	_, err := p.Conn.Write(out)
	return err
}

// finish flushes the last flight (TLS 1.2 ChangeCipherSpec + Finished) and
// switches to pass-through.
func (p *prelogTLS) finish() error {
	err := p.flush()
	p.handshake = false
	if len(p.rbuf) > 0 {
		return errors.New("sqltier: unexpected data after the TLS handshake")
	}
	return err
}

// recordReader hands the TLS stack exactly one record at a time and never
// reads past it. With login-only encryption the client sends the first
// LOGIN7 packet as a TLS record and the next packets in clear right behind
// it; crypto/tls reads ahead, which would swallow those clear bytes.
type recordReader struct {
	r       io.Reader
	hdr     [5]byte
	hdrLeft int // bytes of hdr still to hand out
	left    int // body bytes of the current record still to hand out
}

func (rr *recordReader) Read(b []byte) (int, error) {
	if rr.hdrLeft == 0 && rr.left == 0 {
		if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
			return 0, err
		}
		rr.hdrLeft = 5
		rr.left = int(rr.hdr[3])<<8 | int(rr.hdr[4])
	}
	if rr.hdrLeft > 0 {
		n := copy(b, rr.hdr[5-rr.hdrLeft:])
		rr.hdrLeft -= n
		return n, nil
	}
	if len(b) > rr.left {
		b = b[:rr.left]
	}
	n, err := rr.r.Read(b)
	rr.left -= n
	if err == io.EOF && rr.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// recordConn is a net.Conn whose reads go through a recordReader.
type recordConn struct {
	net.Conn
	rr *recordReader
}

func (c *recordConn) Read(b []byte) (int, error) { return c.rr.Read(b) }

// prefixConn returns prefix before reading from the socket (the byte peeked
// to tell a TDS 8.0 TLS ClientHello from a PRELOGIN packet).
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
