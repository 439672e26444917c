package tds

import "fmt"

const (
	tokenError uint8 = 0xAA
	tokenInfo  uint8 = 0xAB
)

// ServerMessage is an ERROR (0xAA) or INFO (0xAB) token (MS-TDS 2.2.7.10,
// 2.2.7.13). Class is the severity: 0-10 informational, 11-16 user errors,
// 14 security (login failures).
type ServerMessage struct {
	Error  bool
	Number int32
	State  uint8
	Class  uint8
	Text   string
	Server string
	Proc   string
	Line   int32
}

func (m ServerMessage) String() string {
	kind := "INFO"
	if m.Error {
		kind = "ERROR"
	}
	return fmt.Sprintf("%s %d state %d class %d: %s", kind, m.Number, m.State, m.Class, m.Text)
}

// Marshal appends the token; legacy (TDS 7.0/7.1) writes a 16-bit line number.
func (m ServerMessage) Marshal(b []byte, legacy bool) []byte {
	var v []byte
	v = appendU32(v, uint32(m.Number))
	v = append(v, m.State, m.Class)
	v = AppendUSVarChar(v, m.Text)
	v = AppendBVarChar(v, m.Server)
	v = AppendBVarChar(v, m.Proc)
	if legacy {
		v = appendU16(v, uint16(m.Line))
	} else {
		v = appendU32(v, uint32(m.Line))
	}
	if m.Error {
		b = append(b, tokenError)
	} else {
		b = append(b, tokenInfo)
	}
	b = appendU16(b, uint16(len(v)))
	return append(b, v...)
}

func unmarshalServerMessage(r *rd, isError, legacy bool) (ServerMessage, error) {
	body := r.bytes(int(r.u16()))
	if r.err != nil {
		return ServerMessage{}, r.err
	}
	br := &rd{b: body}
	m := ServerMessage{Error: isError}
	m.Number = int32(br.u32())
	m.State, m.Class = br.u8(), br.u8()
	m.Text = br.usvarchar()
	m.Server = br.bvarchar()
	m.Proc = br.bvarchar()
	if legacy {
		m.Line = int32(br.u16())
	} else {
		m.Line = int32(br.u32())
	}
	return m, br.err
}
