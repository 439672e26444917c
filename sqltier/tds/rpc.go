package tds

import (
	"errors"
	"fmt"
	"strings"
)

// Well-known procedure IDs of RPC requests (MS-TDS 2.2.6.6).
const (
	ProcCursor          = 1
	ProcCursorOpen      = 2
	ProcCursorPrepare   = 3
	ProcCursorExecute   = 4
	ProcCursorPrepExec  = 5
	ProcCursorUnprepare = 6
	ProcCursorFetch     = 7
	ProcCursorOption    = 8
	ProcCursorClose     = 9
	ProcExecuteSQL      = 10
	ProcPrepare         = 11
	ProcExecute         = 12
	ProcPrepExec        = 13
	ProcPrepExecRPC     = 14
	ProcUnprepare       = 15
)

var procNames = [...]string{"", "sp_cursor", "sp_cursoropen", "sp_cursorprepare", "sp_cursorexecute",
	"sp_cursorprepexec", "sp_cursorunprepare", "sp_cursorfetch", "sp_cursoroption", "sp_cursorclose",
	"sp_executesql", "sp_prepare", "sp_execute", "sp_prepexec", "sp_prepexecrpc", "sp_unprepare"}

// RPC parameter status flags (MS-TDS 2.2.6.6).
const (
	ParamByRef     = 0x01 // output parameter
	ParamDefault   = 0x02
	ParamEncrypted = 0x08
)

// Param is one RPC parameter: name ("" for positional), flags, type, value
// (decoded as by readValue: nil, int64, bool, float64, string, []byte,
// time.Time or Decimal).
type Param struct {
	Name   string
	Status uint8
	Type   TypeInfo
	Value  any
}

// RPCCall is one RPCReqBatch: a procedure named or numbered, and its
// parameters.
type RPCCall struct {
	ProcID  uint16 // 0 when ProcName was sent
	Name    string // as sent, or the well-known name of ProcID
	Options uint16
	Params  []Param
}

// RPCRequest is the RPC request (MS-TDS 2.2.6.6).
type RPCRequest struct {
	Headers AllHeaders
	Calls   []RPCCall
}

// ErrRPC reports a malformed or unsupported RPC request.
var ErrRPC = errors.New("tds: malformed RPC request")

const (
	maxRPCParams = 2100 // SQL Server's own limit
	maxRPCCalls  = 64
)

// Unmarshal decodes an RPC payload; tds72 selects ALL_HEADERS and the 0xFF
// batch separator (0x80 before 7.2).
func (q *RPCRequest) Unmarshal(b []byte, tds72 bool) error {
	*q = RPCRequest{}
	r := &rd{b: b}
	var err error
	if q.Headers, err = readAllHeadersIf(r, tds72); err != nil {
		return err
	}
	sep := uint8(0x80)
	if tds72 {
		sep = 0xFF
	}
	for r.left() > 0 {
		if len(q.Calls) >= maxRPCCalls {
			return fmt.Errorf("%w: too many calls", ErrRPC)
		}
		var c RPCCall
		n := r.u16()
		if n == 0xFFFF {
			c.ProcID = r.u16()
			if int(c.ProcID) < len(procNames) {
				c.Name = procNames[c.ProcID]
			}
		} else {
			c.Name = DecodeUCS2(r.bytes(2 * int(n)))
		}
		c.Options = r.u16()
		if r.err != nil {
			return fmt.Errorf("%w: %v", ErrRPC, r.err)
		}
		for r.left() > 0 {
			if p := r.b[r.off]; p == sep || (tds72 && p == 0xFE) {
				r.off++ // BatchFlag or NoExecFlag: the next call follows
				break
			}
			if len(c.Params) >= maxRPCParams {
				return fmt.Errorf("%w: too many parameters", ErrRPC)
			}
			var p Param
			p.Name = r.bvarchar()
			p.Status = r.u8()
			if r.err != nil {
				return fmt.Errorf("%w: %v", ErrRPC, r.err)
			}
			if p.Status&ParamEncrypted != 0 {
				return fmt.Errorf("%w: parameter %q is encrypted (Always Encrypted is not supported)", ErrRPC, p.Name)
			}
			ti, err := readTypeInfo(r)
			if err != nil {
				return fmt.Errorf("%w: parameter %d (%q): %v", ErrRPC, len(c.Params)+1, p.Name, err)
			}
			p.Type = ti
			if p.Value, err = readValue(r, ti); err != nil {
				return fmt.Errorf("%w: parameter %d (%q): %v", ErrRPC, len(c.Params)+1, p.Name, err)
			}
			c.Params = append(c.Params, p)
		}
		q.Calls = append(q.Calls, c)
	}
	if len(q.Calls) == 0 {
		return fmt.Errorf("%w: no procedure", ErrRPC)
	}
	return nil
}

// IsExecuteSQL reports whether the call is sp_executesql, by ID or by name.
func (c *RPCCall) IsExecuteSQL() bool {
	if c.ProcID == ProcExecuteSQL {
		return true
	}
	n := strings.ToLower(c.Name)
	n = strings.TrimPrefix(n, "sys.")
	n = strings.TrimPrefix(n, "dbo.")
	return n == "sp_executesql"
}

// Marshal encodes the request (tests and fuzz seeds). Values are encoded
// with AppendValue, so only its types are supported.
func (q *RPCRequest) Marshal(tds72 bool) ([]byte, error) {
	b := appendAllHeadersIf(nil, q.Headers, tds72)
	for i, c := range q.Calls {
		if i > 0 {
			if tds72 {
				b = append(b, 0xFF)
			} else {
				b = append(b, 0x80)
			}
		}
		if c.ProcID != 0 {
			b = appendU16(b, 0xFFFF)
			b = appendU16(b, c.ProcID)
		} else {
			b = AppendUSVarChar(b, c.Name)
		}
		b = appendU16(b, c.Options)
		for _, p := range c.Params {
			b = AppendBVarChar(b, p.Name)
			b = append(b, p.Status)
			b = AppendTypeInfo(b, p.Type)
			var err error
			if p.Type.Type == TypeNull {
				continue
			}
			if b, err = AppendValue(b, p.Type, p.Value); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}
