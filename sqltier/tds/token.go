package tds

import (
	"fmt"
)

// Tokens accumulates the token stream of one reply message (MS-TDS 2.2.7).
// Legacy selects the TDS 7.0/7.1 field widths (16-bit UserType and line
// number, 32-bit DONE row count).
type Tokens struct {
	B      []byte
	Legacy bool
}

// Reset empties the buffer for the next message.
func (t *Tokens) Reset() { t.B = t.B[:0] }

// EnvChange appends an ENVCHANGE.
func (t *Tokens) EnvChange(e EnvChange) { t.B = e.Marshal(t.B) }

// LoginAck appends a LOGINACK.
func (t *Tokens) LoginAck(a LoginAck) { t.B = a.Marshal(t.B) }

// Message appends an ERROR or INFO.
func (t *Tokens) Message(m ServerMessage) { t.B = m.Marshal(t.B, t.Legacy) }

// Done appends a DONE, DONEPROC or DONEINPROC.
func (t *Tokens) Done(d Done) { t.B = d.Marshal(t.B, t.Legacy) }

// ReturnStatus appends a RETURNSTATUS.
func (t *Tokens) ReturnStatus(s int32) { t.B = ReturnStatus(s).Marshal(t.B) }

// ColMetadata appends a COLMETADATA.
func (t *Tokens) ColMetadata(c ColMetadata) { t.B = c.Marshal(t.B, t.Legacy) }

// Row appends a ROW; on error the buffer is left as it was.
func (t *Tokens) Row(cols ColMetadata, r Row) error {
	n := len(t.B)
	b, err := r.Marshal(t.B, cols)
	if err != nil {
		t.B = t.B[:n]
		return err
	}
	t.B = b
	return nil
}

// SSPI appends an SSPI token.
func (t *Tokens) SSPI(blob []byte) { t.B = SSPIToken(blob).Marshal(t.B) }

// ParseTokens decodes a reply's token stream: EnvChange, LoginAck,
// ServerMessage, Done, ReturnStatus, ColMetadata, Row and SSPIToken values,
// in order. It knows the tokens this package writes (a test and fuzz aid,
// and a second opinion on the writers); others are an error.
func ParseTokens(b []byte, legacy bool) ([]any, error) {
	r := &rd{b: b}
	var out []any
	var cols ColMetadata
	for r.left() > 0 {
		tok := r.u8()
		var v any
		var err error
		switch tok {
		case tokenEnvChange:
			v, err = unmarshalEnvChange(r)
		case tokenLoginAck:
			v, err = unmarshalLoginAck(r)
		case tokenError, tokenInfo:
			v, err = unmarshalServerMessage(r, tok == tokenError, legacy)
		case TokenDone, TokenDoneProc, TokenDoneInProc:
			v, err = unmarshalDone(r, tok, legacy)
		case tokenReturnStatus:
			v, err = unmarshalReturnStatus(r)
		case tokenSSPI:
			v, err = unmarshalSSPI(r)
		case tokenColMetadata:
			cols, err = unmarshalColMetadata(r, legacy)
			v = cols
		case tokenRow:
			v, err = unmarshalRow(r, cols)
		default:
			return out, fmt.Errorf("tds: unknown token 0x%02x at %d", tok, r.off-1)
		}
		if err == nil {
			err = r.err
		}
		if err != nil {
			return out, fmt.Errorf("tds: token 0x%02x: %w", tok, err)
		}
		out = append(out, v)
	}
	return out, nil
}
