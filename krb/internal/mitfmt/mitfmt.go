package mitfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ccReader reads the ccache/keytab integer encodings with a sticky error.
type Reader struct {
	B     []byte
	Order binary.ByteOrder
	Err   error
}

func (r *Reader) Fail(err error) {
	if r.Err == nil {
		r.Err = err
	}
}

func (r *Reader) Take(n int) []byte {
	if r.Err != nil {
		return nil
	}
	if n < 0 || n > len(r.B) {
		r.Fail(fmt.Errorf("truncated: need %d bytes, %d left", n, len(r.B)))
		return nil
	}
	v := r.B[:n:n]
	r.B = r.B[n:]
	return v
}

func (r *Reader) U8() uint8 {
	if b := r.Take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *Reader) U16() uint16 {
	if b := r.Take(2); b != nil {
		return r.Order.Uint16(b)
	}
	return 0
}

func (r *Reader) U32() uint32 {
	if b := r.Take(4); b != nil {
		return r.Order.Uint32(b)
	}
	return 0
}

// data32 reads a 32-bit length and that many bytes, copied.
func (r *Reader) Data32() []byte {
	n := r.U32()
	if r.Err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.B)) {
		r.Fail(fmt.Errorf("length %d exceeds the %d bytes left", n, len(r.B)))
		return nil
	}
	if n == 0 {
		return nil
	}
	return append([]byte(nil), r.Take(int(n))...)
}

// count reads a 32-bit element count and checks that count elements of at
// least minSize bytes each can still fit in the input.
func (r *Reader) Count(what string, minSize int) int {
	n := r.U32()
	if r.Err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.B)) {
		r.Fail(fmt.Errorf("%s count %d exceeds the input", what, n))
		return 0
	}
	return int(n)
}

// ccTime maps a 32-bit krb5_timestamp to time; 0 stays the zero time. MIT
// treats timestamps as unsigned since 1.17 (y2038).
func Time(v uint32) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

func Timestamp(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	switch {
	case s <= 0:
		return 0
	case s > 0xffffffff:
		return 0xffffffff
	}
	return uint32(s)
}

// ccWriter appends the version 4 (big-endian) encodings.
type Writer struct{ B []byte }

func (w *Writer) U8(v uint8) { w.B = append(w.B, v) }

func (w *Writer) U16(v uint16) { w.B = binary.BigEndian.AppendUint16(w.B, v) }

func (w *Writer) U32(v uint32) { w.B = binary.BigEndian.AppendUint32(w.B, v) }

func (w *Writer) Data32(d []byte) {
	w.U32(uint32(len(d)))
	w.B = append(w.B, d...)
}

// ccFilePath strips "FILE:" and refuses the cache types this codec cannot
// handle (MIT krb5_cc_resolve: "TYPE:residual", no colon = FILE).
func FilePath(name string) (string, error) {
	if i := strings.IndexByte(name, ':'); i > 0 {
		typ := name[:i]
		if ccIsTypeName(typ) {
			if strings.EqualFold(typ, "FILE") {
				if name[i+1:] == "" {
					return "", errors.New("ccache: empty FILE: path")
				}
				return name[i+1:], nil
			}
			return "", fmt.Errorf("ccache: %s: cache type %q is not supported, only FILE: (MIT: use KRB5CCNAME=FILE:/path)", name, typ)
		}
	}
	if name == "" {
		return "", errors.New("ccache: empty path")
	}
	return name, nil
}

func ccIsTypeName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return len(s) > 0
}

// ccReadFile reads a regular file of at most max bytes.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s exceeds %d bytes", path, max)
	}
	return b, nil
}

func (w *Writer) Data16(d []byte) {
	if len(d) > 0xffff {
		d = d[:0xffff]
	}
	w.U16(uint16(len(d)))
	w.B = append(w.B, d...)
}

// data16 reads a 16-bit length and that many bytes, copied.
func (r *Reader) Data16() []byte {
	n := int(r.U16())
	if n == 0 {
		return nil
	}
	return append([]byte(nil), r.Take(n)...)
}

// Load reads the file a name resolves to (with the format's own FILE:
// rules), bounded by max, and parses it; errors name the format (what) and
// the path.
func Load[T any](name string, resolve func(string) (string, error), max int64, what string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	p, err := resolve(name)
	if err != nil {
		return zero, err
	}
	b, err := ReadFile(p, max)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	v, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%w (%s)", err, p)
	}
	return v, nil
}
