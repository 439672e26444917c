package tds

import (
	"errors"
	"fmt"
)

// ALL_HEADERS header types (MS-TDS 2.2.5.3).
const (
	HeaderQueryNotifications    = 0x0001
	HeaderTransactionDescriptor = 0x0002
	HeaderTraceActivity         = 0x0003
)

// StreamHeader is one header of ALL_HEADERS (MS-TDS 2.2.5.3).
type StreamHeader struct {
	Type uint16
	Data []byte
}

// AllHeaders is the ALL_HEADERS rule that starts SQLBatch, RPC and
// TransMgr requests in TDS 7.2 and later.
type AllHeaders []StreamHeader

// TransactionDescriptor returns the transaction descriptor header, if any.
func (h AllHeaders) TransactionDescriptor() (desc uint64, outstanding uint32, ok bool) {
	for _, x := range h {
		if x.Type == HeaderTransactionDescriptor && len(x.Data) >= 12 {
			r := &rd{b: x.Data}
			return r.u64(), r.u32(), true
		}
	}
	return 0, 0, false
}

// Marshal appends ALL_HEADERS.
func (h AllHeaders) Marshal(b []byte) []byte {
	total := 4
	for _, x := range h {
		total += 6 + len(x.Data)
	}
	b = appendU32(b, uint32(total))
	for _, x := range h {
		b = appendU32(b, uint32(6+len(x.Data)))
		b = appendU16(b, x.Type)
		b = append(b, x.Data...)
	}
	return b
}

// ErrAllHeaders reports a malformed ALL_HEADERS.
var ErrAllHeaders = errors.New("tds: malformed ALL_HEADERS")

const maxStreamHeaders = 16

// readAllHeaders decodes ALL_HEADERS at r.
// appendAllHeadersIf writes ALL_HEADERS for a 7.2+ request: h, or the
// transaction descriptor of "no transaction" (outstanding requests 1) that
// MS-TDS 2.2.5.3 requires when the caller gave none.
func appendAllHeadersIf(b []byte, h AllHeaders, present bool) []byte {
	if !present {
		return b
	}
	if h == nil {
		h = AllHeaders{{Type: HeaderTransactionDescriptor, Data: make([]byte, 12)}}
		h[0].Data[8] = 1
	}
	return h.Marshal(b)
}

// readAllHeadersIf reads ALL_HEADERS when the request carries them (TDS 7.2+).
func readAllHeadersIf(r *rd, present bool) (AllHeaders, error) {
	if !present {
		return nil, nil
	}
	return readAllHeaders(r)
}

func readAllHeaders(r *rd) (AllHeaders, error) {
	total := int(r.u32())
	if r.err != nil || total < 4 || total-4 > r.left() {
		return nil, fmt.Errorf("%w: TotalLength %d", ErrAllHeaders, total)
	}
	hr := &rd{b: r.bytes(total - 4)}
	var h AllHeaders
	for hr.left() > 0 {
		n := int(hr.u32())
		if hr.err != nil || n < 6 || n-4 > hr.left() || len(h) >= maxStreamHeaders {
			return nil, fmt.Errorf("%w: HeaderLength %d", ErrAllHeaders, n)
		}
		typ := hr.u16()
		h = append(h, StreamHeader{Type: typ, Data: hr.bytes(n - 6)})
	}
	return h, nil
}

// SQLBatch is the SQLBatch request (MS-TDS 2.2.6.7).
type SQLBatch struct {
	Headers AllHeaders
	SQL     string
}

// Unmarshal decodes a SQLBatch payload; allHeaders is true for TDS 7.2+,
// where ALL_HEADERS is mandatory.
func (s *SQLBatch) Unmarshal(b []byte, allHeaders bool) error {
	*s = SQLBatch{}
	r := &rd{b: b}
	var err error
	if s.Headers, err = readAllHeadersIf(r, allHeaders); err != nil {
		return err
	}
	text := r.bytes(r.left())
	if len(text)%2 != 0 {
		return fmt.Errorf("tds: SQLBatch text of odd length %d", len(text))
	}
	s.SQL = DecodeUCS2(text)
	return nil
}

// Marshal encodes the request (tests and fuzz seeds).
func (s *SQLBatch) Marshal(allHeaders bool) []byte {
	b := appendAllHeadersIf(nil, s.Headers, allHeaders)
	return AppendUCS2(b, s.SQL)
}
