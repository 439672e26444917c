// Package dcerpc is connection-oriented DCE/RPC (C706 chapter 12) with
// Microsoft's extensions (MS-RPCE): the PDUs, presentation-context
// negotiation, the security providers Windows servers take on a TCP
// endpoint (NTLMSSP, SPNEGO with NTLM or Kerberos) at every
// authentication level up to packet privacy, fragmentation, and a server
// that dispatches calls to a Handler per interface, the way miekg/dns
// dispatches queries.
package dcerpc

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// PDU types (C706 §12.6.4.1).
const (
	ptRequest         = 0
	ptResponse        = 2
	ptFault           = 3
	ptBind            = 11
	ptBindAck         = 12
	ptBindNak         = 13
	ptAlterContext    = 14
	ptAlterContextRsp = 15
	ptAuth3           = 16
	ptShutdown        = 17
	ptCoCancel        = 18
	ptOrphaned        = 19
)

var ptNames = map[byte]string{
	ptRequest: "request", ptResponse: "response", ptFault: "fault", ptBind: "bind", ptBindAck: "bind_ack",
	ptBindNak: "bind_nak", ptAlterContext: "alter_context", ptAlterContextRsp: "alter_context_resp",
	ptAuth3: "auth3", ptShutdown: "shutdown", ptCoCancel: "co_cancel", ptOrphaned: "orphaned",
}

// pfc_flags (C706 §12.6.3.1; MS-RPCE 2.2.2.3 for header signing on bind).
const (
	pfcFirstFrag      = 0x01
	pfcLastFrag       = 0x02
	pfcSupportHdrSign = 0x04 // bind / bind_ack only (PFC_PENDING_CANCEL elsewhere)
	pfcConcMPX        = 0x10
	pfcDidNotExecute  = 0x20
	pfcObjectUUID     = 0x80
)

const (
	headerLen = 16
	// MaxFrag is the largest fragment this server takes or sends (Windows
	// and Samba both offer 5840); a longer frag_length closes the connection.
	MaxFrag = 5840
	// MaxStub bounds a reassembled request.
	MaxStub = 4 << 20
)

// header is the common header of every connection-oriented PDU.
type header struct {
	ptype   byte
	flags   byte
	drep    [4]byte
	fragLen uint16
	authLen uint16
	callID  uint32
}

// pdu is one fragment as read: its header, body (after the header, before
// the auth verifier) and auth verifier.
type pdu struct {
	header
	raw  []byte // the whole fragment
	body []byte
	auth *authVerifier
}

// ProtocolError is a PDU this server cannot take: the connection closes
// (after a bind_nak or fault when one can be sent).
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string  { return "dcerpc: " + e.Reason }
func (e *ProtocolError) String() string { return e.Error() }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...)}
}

// readPDU reads one fragment: version 5.0, little-endian data
// representation, frag_length within MaxFrag, auth_length within it.
func readPDU(r io.Reader) (*pdu, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 5 || h[1] != 0 {
		return nil, protoErr("RPC version %d.%d (connection-oriented RPC is 5.0)", h[0], h[1])
	}
	if h[4]&0xf0 != 0x10 {
		return nil, protoErr("big-endian data representation (drep %x) is not supported", h[4:8])
	}
	p := &pdu{header: header{ptype: h[2], flags: h[3], fragLen: binary.LittleEndian.Uint16(h[8:]),
		authLen: binary.LittleEndian.Uint16(h[10:]), callID: binary.LittleEndian.Uint32(h[12:])}}
	copy(p.drep[:], h[4:8])
	if p.fragLen < headerLen || p.fragLen > MaxFrag {
		return nil, protoErr("frag_length %d (at most %d)", p.fragLen, MaxFrag)
	}
	p.raw = make([]byte, p.fragLen)
	copy(p.raw, h[:])
	if _, err := io.ReadFull(r, p.raw[headerLen:]); err != nil {
		return nil, err
	}
	end := int(p.fragLen)
	if p.authLen > 0 {
		// The verifier is the sec_trailer (8 bytes) and auth_length bytes of
		// auth_value at the very end (C706 §12.6.3.1, MS-RPCE 2.2.2.11).
		start := end - int(p.authLen) - secTrailerLen
		if start < headerLen {
			return nil, protoErr("auth_length %d does not fit a %d-byte fragment", p.authLen, p.fragLen)
		}
		a, err := parseAuthVerifier(p.raw[start:end])
		if err != nil {
			return nil, err
		}
		p.auth = a
		end = start
	}
	p.body = p.raw[headerLen:end]
	return p, nil
}

// marshal writes a PDU: header, body, and (when a is set) the sec_trailer
// and its auth_value. frag_length and auth_length are filled in.
func marshal(ptype, flags byte, callID uint32, body []byte, a *authVerifier) []byte {
	b := make([]byte, headerLen, headerLen+len(body)+secTrailerLen+64)
	b[0], b[1], b[2], b[3] = 5, 0, ptype, flags
	b[4] = 0x10 // little-endian, ASCII, IEEE floats
	binary.LittleEndian.PutUint32(b[12:], callID)
	b = append(b, body...)
	if a != nil {
		b = a.append(b)
		binary.LittleEndian.PutUint16(b[10:], uint16(len(a.value)))
	}
	binary.LittleEndian.PutUint16(b[8:], uint16(len(b)))
	return b
}

// UUID is a DCE UUID as it travels in NDR (the first three fields
// little-endian, as Windows keeps a GUID in memory).
type UUID [16]byte

// ParseUUID reads "e3514235-4b06-11d1-ab04-00c04fc2dcd2".
func ParseUUID(s string) (UUID, error) {
	var u UUID
	h := strings.ReplaceAll(strings.Trim(s, "{}"), "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return u, fmt.Errorf("dcerpc: bad UUID %q", s)
	}
	u[0], u[1], u[2], u[3] = b[3], b[2], b[1], b[0]
	u[4], u[5], u[6], u[7] = b[5], b[4], b[7], b[6]
	copy(u[8:], b[8:])
	return u, nil
}

// MustUUID is ParseUUID for constants.
func MustUUID(s string) UUID {
	u, err := ParseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

func (u UUID) String() string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x", u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6], u[8:10], u[10:])
}

// SyntaxID names an interface or a transfer syntax and its version.
type SyntaxID struct {
	UUID         UUID
	Major, Minor uint16
}

func (s SyntaxID) String() string { return fmt.Sprintf("%s v%d.%d", s.UUID, s.Major, s.Minor) }

func (s SyntaxID) append(b []byte) []byte {
	b = append(b, s.UUID[:]...)
	b = binary.LittleEndian.AppendUint16(b, s.Major)
	return binary.LittleEndian.AppendUint16(b, s.Minor)
}

func parseSyntax(b []byte) SyntaxID {
	var s SyntaxID
	copy(s.UUID[:], b)
	s.Major = binary.LittleEndian.Uint16(b[16:])
	s.Minor = binary.LittleEndian.Uint16(b[18:])
	return s
}

// Transfer syntaxes (C706 appendix I; MS-RPCE 3.3.1.5.3 for the
// bind-time feature negotiation "syntax", whose last 8 bytes are the
// client's feature bits).
var (
	NDR20      = SyntaxID{UUID: MustUUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), Major: 2}
	NDR64      = SyntaxID{UUID: MustUUID("71710533-beba-4937-8319-b5dbef9ccc36"), Major: 1}
	btfnPrefix = MustUUID("6cb71c2c-9812-4540-0000-000000000000")
)
