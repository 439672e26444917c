// Package tds encodes and decodes the Tabular Data Stream messages (MS-TDS,
// protocol versions 7.1 to 7.4 and 8.0) that a SQL Server speaks to its
// clients: packet framing with reassembly, PRELOGIN, LOGIN7, SQLBatch, RPC
// requests, and the tokens of the tabular result stream.
//
// Every decoder works on a complete, length-bounded message and checks each
// length it reads from the wire against the bytes it has: malformed input is
// an error, never a panic or an unbounded allocation. Each message type keeps
// its marshal and unmarshal code in one file, the way crypto/tls does.
package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PacketType is the first byte of a packet header (MS-TDS 2.2.3.1.1).
type PacketType uint8

// Packet types (MS-TDS 2.2.3.1.1).
const (
	PacketSQLBatch     PacketType = 0x01
	PacketPreTDS7Login PacketType = 0x02
	PacketRPC          PacketType = 0x03
	PacketReply        PacketType = 0x04 // tabular result, server to client
	PacketAttention    PacketType = 0x06
	PacketBulkLoad     PacketType = 0x07
	PacketFedAuthToken PacketType = 0x08
	PacketTransMgr     PacketType = 0x0E
	PacketLogin7       PacketType = 0x10
	PacketSSPI         PacketType = 0x11
	PacketPrelogin     PacketType = 0x12
)

func (t PacketType) String() string {
	switch t {
	case PacketSQLBatch:
		return "SQLBatch"
	case PacketPreTDS7Login:
		return "PreTDS7Login"
	case PacketRPC:
		return "RPC"
	case PacketReply:
		return "Reply"
	case PacketAttention:
		return "Attention"
	case PacketBulkLoad:
		return "BulkLoad"
	case PacketFedAuthToken:
		return "FedAuthToken"
	case PacketTransMgr:
		return "TransMgr"
	case PacketLogin7:
		return "LOGIN7"
	case PacketSSPI:
		return "SSPI"
	case PacketPrelogin:
		return "PRELOGIN"
	}
	return fmt.Sprintf("PacketType(0x%02x)", uint8(t))
}

// Packet status bits (MS-TDS 2.2.3.1.2).
const (
	StatusEOM                     = 0x01 // last packet of the message
	StatusIgnore                  = 0x02 // with EOM: the client asks the server to drop the message
	StatusResetConnection         = 0x08
	StatusResetConnectionSkipTran = 0x10
)

// Sizes (MS-TDS 2.2.3.1.3 Length, 2.2.6.4 PacketSize).
const (
	HeaderSize        = 8
	MinPacketSize     = 512
	MaxPacketSize     = 32767
	DefaultPacketSize = 4096
	// DefaultMaxMessage bounds a reassembled message. LOGIN7 with a large
	// Kerberos ticket is a few KB; a lab query is tiny.
	DefaultMaxMessage = 4 << 20
)

// Header is the 8-byte packet header (MS-TDS 2.2.3.1). Length and SPID are
// big-endian on the wire.
type Header struct {
	Type     PacketType
	Status   uint8
	Length   uint16 // header included
	SPID     uint16
	PacketID uint8
	Window   uint8
}

// Marshal appends the 8 header bytes to b.
func (h Header) Marshal(b []byte) []byte {
	return append(b, byte(h.Type), h.Status, byte(h.Length>>8), byte(h.Length), byte(h.SPID>>8), byte(h.SPID), h.PacketID, h.Window)
}

// UnmarshalHeader decodes a header from its 8 bytes.
func UnmarshalHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	return Header{
		Type:     PacketType(b[0]),
		Status:   b[1],
		Length:   binary.BigEndian.Uint16(b[2:4]),
		SPID:     binary.BigEndian.Uint16(b[4:6]),
		PacketID: b[6],
		Window:   b[7],
	}, nil
}

// Errors of the framing layer.
var (
	ErrShort          = errors.New("tds: truncated data")
	ErrPacketLength   = errors.New("tds: packet length out of range")
	ErrMessageTooBig  = errors.New("tds: message larger than the limit")
	ErrMixedPackets   = errors.New("tds: packet type changed inside a message")
	ErrUnexpectedType = errors.New("tds: unexpected packet type")
)

// Message is a reassembled TDS message: the payloads of its packets up to and
// including the one with EOM (MS-TDS 2.2.3).
type Message struct {
	Type   PacketType
	Status uint8 // status of the first packet (RESETCONNECTION bits)
	SPID   uint16
	Data   []byte
	EOM    bool // the last packet read had EOM; false only from ReadFirstPacket
}

// ResetConnection reports whether the client asked for sp_reset_connection
// semantics on this request (MS-TDS 2.2.3.1.2).
func (m *Message) ResetConnection() bool {
	return m.Status&(StatusResetConnection|StatusResetConnectionSkipTran) != 0
}

// Reader reads packets and reassembles messages from a byte stream. It is not
// safe for concurrent use. The Data of a returned Message aliases the
// Reader's buffer and is valid until the next read.
type Reader struct {
	r io.Reader
	// MaxPacket is the largest packet accepted (default MaxPacketSize).
	MaxPacket int
	// MaxMessage bounds a reassembled message (default DefaultMaxMessage).
	MaxMessage int

	hdr [HeaderSize]byte
	buf []byte
	msg Message
}

// NewReader reads from r with the default bounds.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, MaxPacket: MaxPacketSize, MaxMessage: DefaultMaxMessage}
}

// SetTransport switches the underlying stream (TLS on and off, MS-TDS 3.2.5.2).
func (r *Reader) SetTransport(rd io.Reader) { r.r = rd }

func (r *Reader) limits() (int, int) {
	mp, mm := r.MaxPacket, r.MaxMessage
	if mp <= 0 || mp > MaxPacketSize {
		mp = MaxPacketSize
	}
	if mm <= 0 {
		mm = DefaultMaxMessage
	}
	return mp, mm
}

// readPacket reads one packet and appends its payload to r.buf.
func (r *Reader) readPacket() (Header, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Header{}, err
	}
	h, _ := UnmarshalHeader(r.hdr[:])
	maxPacket, maxMessage := r.limits()
	if int(h.Length) < HeaderSize || int(h.Length) > maxPacket {
		return h, fmt.Errorf("%w: %d", ErrPacketLength, h.Length)
	}
	n := int(h.Length) - HeaderSize
	if len(r.buf)+n > maxMessage {
		return h, ErrMessageTooBig
	}
	start := len(r.buf)
	if cap(r.buf)-start < n {
		nb := make([]byte, start, max(2*cap(r.buf), start+n, 4096))
		copy(nb, r.buf)
		r.buf = nb
	}
	r.buf = r.buf[:start+n]
	if _, err := io.ReadFull(r.r, r.buf[start:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	return h, nil
}

// ReadFirstPacket starts a message and reads only its first packet; Continue
// reads the rest. The server needs this split for login-only encryption,
// where the first LOGIN7 packet arrives inside TLS and the others in clear
// (MS-TDS 3.3.5.2, ENCRYPT_OFF).
func (r *Reader) ReadFirstPacket() (*Message, error) {
	r.buf = r.buf[:0]
	h, err := r.readPacket()
	if err != nil {
		return nil, err
	}
	r.msg = Message{Type: h.Type, Status: h.Status, SPID: h.SPID, EOM: h.Status&StatusEOM != 0}
	r.msg.Data = r.buf
	return &r.msg, nil
}

// Continue reads packets until EOM and appends them to m, which must come
// from this Reader's ReadFirstPacket.
func (r *Reader) Continue(m *Message) error {
	for !m.EOM {
		h, err := r.readPacket()
		if err != nil {
			return err
		}
		if h.Type != m.Type {
			return fmt.Errorf("%w: %v then %v", ErrMixedPackets, m.Type, h.Type)
		}
		m.EOM = h.Status&StatusEOM != 0
		m.Data = r.buf
		if m.EOM && h.Status&StatusIgnore != 0 {
			m.Status |= StatusIgnore
		}
	}
	return nil
}

// ReadMessage reads packets until one carries EOM and returns the message.
// Messages the client marked IGNORE (MS-TDS 2.2.3.1.2) are dropped and the
// next one is read.
func (r *Reader) ReadMessage() (*Message, error) {
	for {
		m, err := r.ReadFirstPacket()
		if err != nil {
			return nil, err
		}
		if m.EOM && m.Status&StatusIgnore != 0 {
			continue
		}
		if err := r.Continue(m); err != nil {
			return nil, err
		}
		if m.Status&StatusIgnore != 0 {
			continue
		}
		return m, nil
	}
}

// Writer splits messages into packets of at most PacketSize bytes
// (MS-TDS 2.2.3). Each message goes to the stream in one Write call.
type Writer struct {
	w          io.Writer
	PacketSize int
	SPID       uint16
	out        []byte
}

// NewWriter writes packets of DefaultPacketSize to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, PacketSize: DefaultPacketSize} }

// SetTransport switches the underlying stream.
func (w *Writer) SetTransport(wr io.Writer) { w.w = wr }

// AppendPackets frames data as one message of type t, appending the packets
// to dst. Non-final packets carry status 0, the last one EOM (go-mssqldb
// treats any non-zero status as the end of the message).
func AppendPackets(dst []byte, t PacketType, spid uint16, packetSize int, data []byte) []byte {
	if packetSize < MinPacketSize || packetSize > MaxPacketSize {
		packetSize = DefaultPacketSize
	}
	chunk := packetSize - HeaderSize
	id := uint8(1)
	for {
		n := min(len(data), chunk)
		status := uint8(0)
		if n == len(data) {
			status = StatusEOM
		}
		dst = Header{Type: t, Status: status, Length: uint16(HeaderSize + n), SPID: spid, PacketID: id}.Marshal(dst)
		dst = append(dst, data[:n]...)
		data = data[n:]
		id++
		if status == StatusEOM {
			return dst
		}
	}
}

// WriteMessage frames data as one message of type t and writes it.
func (w *Writer) WriteMessage(t PacketType, data []byte) error {
	w.out = AppendPackets(w.out[:0], t, w.SPID, w.PacketSize, data)
	_, err := w.w.Write(w.out)
	if cap(w.out) > 1<<20 {
		w.out = nil // do not pin a large buffer to an idle connection
	}
	return err
}
