package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PRELOGIN option tokens (MS-TDS 2.2.6.5).
const (
	PreloginVersion         = 0x00
	PreloginEncryption      = 0x01
	PreloginInstOpt         = 0x02
	PreloginThreadID        = 0x03
	PreloginMARS            = 0x04
	PreloginTraceID         = 0x05
	PreloginFedAuthRequired = 0x06
	PreloginNonceOpt        = 0x07
	PreloginTerminator      = 0xFF
)

// ENCRYPTION option values (MS-TDS 2.2.6.5; 0x04 is TDS 8.0 strict).
const (
	EncryptOff    = 0x00 // encrypt the login packet only
	EncryptOn     = 0x01 // encrypt the whole session
	EncryptNotSup = 0x02 // no encryption
	EncryptReq    = 0x03 // encryption required
	EncryptStrict = 0x04 // TDS 8.0: TLS came first
)

// maxPreloginOptions bounds the option table (real clients send ≤ 9).
const maxPreloginOptions = 64

// PreloginOption is one raw entry of the option table.
type PreloginOption struct {
	Token uint8
	Data  []byte
}

// Prelogin is the PRELOGIN message (MS-TDS 2.2.6.5), in both directions.
// Unmarshal fills the decoded fields and keeps every option in Options;
// Marshal writes the decoded fields (and Extra, verbatim, after them).
type Prelogin struct {
	// VERSION: product version for the server (e.g. 16.0.4000), the client
	// library version for the client. Major, Minor, Build are big-endian.
	Major, Minor uint8
	Build        uint16
	SubBuild     uint16
	HasVersion   bool

	Encryption    uint8
	HasEncryption bool

	Instance    string // INSTOPT without the NUL
	HasInstance bool

	ThreadID    uint32
	HasThreadID bool

	MARS    uint8
	HasMARS bool

	TraceID []byte // 36 bytes: connection ID + activity ID + sequence

	FedAuthRequired    uint8
	HasFedAuthRequired bool

	Nonce []byte // 32 bytes when present

	Options []PreloginOption // every option as received (Unmarshal only)
}

// Marshal encodes the PRELOGIN payload: the option table (token, BE offset,
// BE length), the terminator, then the option data.
func (p *Prelogin) Marshal() []byte {
	type opt struct {
		tok  uint8
		data []byte
	}
	var opts []opt
	if p.HasVersion {
		v := []byte{p.Major, p.Minor, byte(p.Build >> 8), byte(p.Build), byte(p.SubBuild >> 8), byte(p.SubBuild)}
		opts = append(opts, opt{PreloginVersion, v})
	}
	if p.HasEncryption {
		opts = append(opts, opt{PreloginEncryption, []byte{p.Encryption}})
	}
	if p.HasInstance {
		opts = append(opts, opt{PreloginInstOpt, append([]byte(p.Instance), 0)})
	}
	if p.HasThreadID {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, p.ThreadID)
		opts = append(opts, opt{PreloginThreadID, b})
	}
	if p.HasMARS {
		opts = append(opts, opt{PreloginMARS, []byte{p.MARS}})
	}
	if p.TraceID != nil {
		opts = append(opts, opt{PreloginTraceID, p.TraceID})
	}
	if p.HasFedAuthRequired {
		opts = append(opts, opt{PreloginFedAuthRequired, []byte{p.FedAuthRequired}})
	}
	if p.Nonce != nil {
		opts = append(opts, opt{PreloginNonceOpt, p.Nonce})
	}
	off := len(opts)*5 + 1
	b := make([]byte, 0, off+64)
	for _, o := range opts {
		b = append(b, o.tok, byte(off>>8), byte(off), byte(len(o.data)>>8), byte(len(o.data)))
		off += len(o.data)
	}
	b = append(b, PreloginTerminator)
	for _, o := range opts {
		b = append(b, o.data...)
	}
	return b
}

// ErrPrelogin reports a malformed PRELOGIN message.
var ErrPrelogin = errors.New("tds: malformed PRELOGIN")

// Unmarshal decodes a PRELOGIN payload. Option data must lie inside the
// payload; duplicate options are refused.
func (p *Prelogin) Unmarshal(b []byte) error {
	*p = Prelogin{}
	seen := map[uint8]bool{}
	for i := 0; ; i++ {
		if i >= maxPreloginOptions {
			return fmt.Errorf("%w: too many options", ErrPrelogin)
		}
		pos := i * 5
		if pos >= len(b) {
			return fmt.Errorf("%w: no terminator", ErrPrelogin)
		}
		tok := b[pos]
		if tok == PreloginTerminator {
			break
		}
		if pos+5 > len(b) {
			return fmt.Errorf("%w: truncated option table", ErrPrelogin)
		}
		off := int(binary.BigEndian.Uint16(b[pos+1:]))
		n := int(binary.BigEndian.Uint16(b[pos+3:]))
		if off+n > len(b) {
			return fmt.Errorf("%w: option 0x%02x at %d+%d outside %d bytes", ErrPrelogin, tok, off, n, len(b))
		}
		if seen[tok] {
			return fmt.Errorf("%w: duplicate option 0x%02x", ErrPrelogin, tok)
		}
		seen[tok] = true
		d := b[off : off+n]
		p.Options = append(p.Options, PreloginOption{Token: tok, Data: d})
		switch tok {
		case PreloginVersion:
			if n < 6 {
				return fmt.Errorf("%w: VERSION of %d bytes", ErrPrelogin, n)
			}
			p.HasVersion = true
			p.Major, p.Minor = d[0], d[1]
			p.Build = binary.BigEndian.Uint16(d[2:])
			p.SubBuild = binary.BigEndian.Uint16(d[4:])
		case PreloginEncryption:
			if n < 1 {
				return fmt.Errorf("%w: empty ENCRYPTION", ErrPrelogin)
			}
			p.HasEncryption = true
			p.Encryption = d[0]
		case PreloginInstOpt:
			p.HasInstance = true
			for j, c := range d {
				if c == 0 {
					d = d[:j]
					break
				}
			}
			p.Instance = string(d)
		case PreloginThreadID:
			if n >= 4 {
				p.HasThreadID = true
				p.ThreadID = binary.BigEndian.Uint32(d)
			}
		case PreloginMARS:
			if n >= 1 {
				p.HasMARS = true
				p.MARS = d[0]
			}
		case PreloginTraceID:
			p.TraceID = d
		case PreloginFedAuthRequired:
			if n >= 1 {
				p.HasFedAuthRequired = true
				p.FedAuthRequired = d[0]
			}
		case PreloginNonceOpt:
			p.Nonce = d
		}
	}
	return nil
}

// EncryptionName names an ENCRYPTION value for logs.
func EncryptionName(v uint8) string {
	switch v {
	case EncryptOff:
		return "ENCRYPT_OFF"
	case EncryptOn:
		return "ENCRYPT_ON"
	case EncryptNotSup:
		return "ENCRYPT_NOT_SUP"
	case EncryptReq:
		return "ENCRYPT_REQ"
	case EncryptStrict:
		return "ENCRYPT_STRICT"
	}
	return fmt.Sprintf("ENCRYPT_0x%02x", v)
}
