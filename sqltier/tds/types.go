package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Data type identifiers (MS-TDS 2.2.5.4).
const (
	// Fixed-length types.
	TypeNull     = 0x1F
	TypeInt1     = 0x30
	TypeBit      = 0x32
	TypeInt2     = 0x34
	TypeInt4     = 0x38
	TypeDateTim4 = 0x3A
	TypeFlt4     = 0x3B
	TypeMoney    = 0x3C
	TypeDateTime = 0x3D
	TypeFlt8     = 0x3E
	TypeMoney4   = 0x7A
	TypeInt8     = 0x7F
	// BYTELEN types.
	TypeGUID           = 0x24
	TypeIntN           = 0x26
	TypeDecimal        = 0x37
	TypeNumeric        = 0x3F
	TypeBitN           = 0x68
	TypeDecimalN       = 0x6A
	TypeNumericN       = 0x6C
	TypeFltN           = 0x6D
	TypeMoneyN         = 0x6E
	TypeDateTimeN      = 0x6F
	TypeDateN          = 0x28
	TypeTimeN          = 0x29
	TypeDateTime2N     = 0x2A
	TypeDateTimeOffset = 0x2B
	TypeChar           = 0x2F
	TypeVarChar        = 0x27
	TypeBinary         = 0x2D
	TypeVarBinary      = 0x25
	// USHORTLEN types.
	TypeBigVarBin  = 0xA5
	TypeBigVarChar = 0xA7
	TypeBigBinary  = 0xAD
	TypeBigChar    = 0xAF
	TypeNVarChar   = 0xE7
	TypeNChar      = 0xEF
	TypeXML        = 0xF1
	TypeUDT        = 0xF0
	// LONGLEN types.
	TypeText    = 0x23
	TypeImage   = 0x22
	TypeNText   = 0x63
	TypeVariant = 0x62
)

// PLP markers (MS-TDS 2.2.5.2.3).
const (
	plpNull    = 0xFFFFFFFFFFFFFFFF
	plpUnknown = 0xFFFFFFFFFFFFFFFE
	maxShort   = 0xFFFF // USHORTLEN max length that announces PLP
)

// DefaultCollation is SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, flags
// 0xD0 (ignore case, accent-sensitive...), version 0, sort id 0x34
// (MS-TDS 2.2.5.1.2).
var DefaultCollation = [5]byte{0x09, 0x04, 0xD0, 0x00, 0x34}

// TypeInfo is a TYPE_INFO (MS-TDS 2.2.5.6).
type TypeInfo struct {
	Type      uint8
	Size      int // fixed size, or declared maximum length in bytes (0xFFFF with PLP)
	Precision uint8
	Scale     uint8
	Collation [5]byte
	PLP       bool // the value is a partially length-prefixed stream
}

// Decimal is a DECIMAL/NUMERIC/MONEY value rendered exactly ("-12.50").
type Decimal string

// ErrType reports an unsupported or malformed type.
var ErrType = errors.New("tds: unsupported or malformed TYPE_INFO")

// maxValue bounds one decoded value (a PLP stream may announce any length).
const maxValue = DefaultMaxMessage

func fixedSize(t uint8) (int, bool) {
	switch t {
	case TypeNull:
		return 0, true
	case TypeInt1, TypeBit:
		return 1, true
	case TypeInt2:
		return 2, true
	case TypeInt4, TypeDateTim4, TypeFlt4, TypeMoney4:
		return 4, true
	case TypeMoney, TypeDateTime, TypeFlt8, TypeInt8:
		return 8, true
	}
	return 0, false
}

func isCharType(t uint8) bool {
	switch t {
	case TypeBigVarChar, TypeBigChar, TypeNVarChar, TypeNChar, TypeText, TypeNText:
		return true
	}
	return false
}

// nullableSizes are the sizes the variable-length forms of the fixed types
// may have (MS-TDS 2.2.5.4.2).
var nullableSizes = map[uint8][]int{TypeGUID: {16}, TypeIntN: {1, 2, 4, 8}, TypeBitN: {1}, TypeFltN: {4, 8}, TypeMoneyN: {4, 8}, TypeDateTimeN: {4, 8}}

// readTypeInfo decodes a TYPE_INFO as found in RPC parameters and
// COLMETADATA (no table names: the lab never sends TEXT columns).
func readTypeInfo(r *rd) (TypeInfo, error) {
	ti := TypeInfo{Type: r.u8()}
	if r.err != nil {
		return ti, r.err
	}
	if n, ok := fixedSize(ti.Type); ok {
		ti.Size = n
		return ti, nil
	}
	switch ti.Type {
	case TypeGUID, TypeIntN, TypeBitN, TypeFltN, TypeMoneyN, TypeDateTimeN,
		TypeChar, TypeVarChar, TypeBinary, TypeVarBinary:
		ti.Size = int(r.u8())
		if sizes, ok := nullableSizes[ti.Type]; ok && r.err == nil && !slices.Contains(sizes, ti.Size) {
			return ti, fmt.Errorf("%w: type 0x%02x of %d bytes", ErrType, ti.Type, ti.Size)
		}
	case TypeDecimal, TypeNumeric, TypeDecimalN, TypeNumericN:
		ti.Size = int(r.u8())
		ti.Precision = r.u8()
		ti.Scale = r.u8()
		if ti.Scale > 38 || ti.Precision > 38 || ti.Scale > ti.Precision && ti.Precision > 0 {
			return ti, fmt.Errorf("%w: decimal(%d,%d)", ErrType, ti.Precision, ti.Scale)
		}
		if r.err == nil && ti.Size != 5 && ti.Size != 9 && ti.Size != 13 && ti.Size != 17 {
			return ti, fmt.Errorf("%w: decimal of %d bytes", ErrType, ti.Size)
		}
	case TypeDateN:
		ti.Size = 3
	case TypeTimeN, TypeDateTime2N, TypeDateTimeOffset:
		ti.Scale = r.u8()
		if ti.Scale > 7 {
			return ti, fmt.Errorf("%w: time scale %d", ErrType, ti.Scale)
		}
	case TypeBigVarBin, TypeBigVarChar, TypeBigBinary, TypeBigChar, TypeNVarChar, TypeNChar:
		ti.Size = int(r.u16())
		ti.PLP = ti.Size == maxShort
		if isCharType(ti.Type) {
			copy(ti.Collation[:], r.bytes(5))
		}
	case TypeText, TypeNText, TypeImage:
		ti.Size = int(r.u32())
		if isCharType(ti.Type) {
			copy(ti.Collation[:], r.bytes(5))
		}
	default:
		return ti, fmt.Errorf("%w: type 0x%02x", ErrType, ti.Type)
	}
	return ti, r.err
}

// AppendTypeInfo encodes ti.
func AppendTypeInfo(b []byte, ti TypeInfo) []byte {
	b = append(b, ti.Type)
	if _, ok := fixedSize(ti.Type); ok {
		return b
	}
	switch ti.Type {
	case TypeDecimal, TypeNumeric, TypeDecimalN, TypeNumericN:
		return append(b, byte(ti.Size), ti.Precision, ti.Scale)
	case TypeDateN:
		return b
	case TypeTimeN, TypeDateTime2N, TypeDateTimeOffset:
		return append(b, ti.Scale)
	case TypeBigVarBin, TypeBigVarChar, TypeBigBinary, TypeBigChar, TypeNVarChar, TypeNChar:
		size := ti.Size
		if ti.PLP {
			size = maxShort
		}
		b = appendU16(b, uint16(size))
		if isCharType(ti.Type) {
			b = append(b, ti.Collation[:]...)
		}
		return b
	case TypeText, TypeNText, TypeImage:
		b = appendU32(b, uint32(ti.Size))
		if isCharType(ti.Type) {
			b = append(b, ti.Collation[:]...)
		}
		return b
	}
	return append(b, byte(ti.Size))
}

// readValue decodes one value of type ti: nil for NULL, else int64, bool,
// float64, string, []byte, time.Time or Decimal.
func readValue(r *rd, ti TypeInfo) (any, error) {
	var data []byte
	if n, ok := fixedSize(ti.Type); ok {
		if ti.Type == TypeNull {
			return nil, nil
		}
		data = r.bytes(n)
	} else {
		switch ti.Type {
		case TypeBigVarBin, TypeBigVarChar, TypeBigBinary, TypeBigChar, TypeNVarChar, TypeNChar:
			if ti.PLP {
				d, null, err := readPLP(r)
				if err != nil || null {
					return nil, err
				}
				data = d
				break
			}
			n := r.u16()
			if n == maxShort {
				return nil, r.err
			}
			if int(n) > ti.Size {
				// MS-TDS 2.2.5.2.3: the actual length never exceeds the declared maximum.
				return nil, fmt.Errorf("%w: a value of %d bytes in a column or parameter of at most %d", ErrType, n, ti.Size)
			}
			data = r.bytes(int(n))
		case TypeText, TypeNText, TypeImage:
			// RPC parameters carry LONGLEN values without a text pointer.
			n := r.u32()
			if n == 0xFFFFFFFF {
				return nil, r.err
			}
			if n > uint32(r.left()) {
				r.fail()
				return nil, r.err
			}
			data = r.bytes(int(n))
		default:
			n := r.u8()
			if r.err != nil {
				return nil, r.err
			}
			if n == 0 {
				return nil, nil
			}
			data = r.bytes(int(n))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return decodeValue(ti, data)
}

func readPLP(r *rd) ([]byte, bool, error) {
	total := r.u64()
	if r.err != nil {
		return nil, false, r.err
	}
	if total == plpNull {
		return nil, true, nil
	}
	if total != plpUnknown && total > uint64(r.left()) {
		r.fail()
		return nil, false, r.err
	}
	var out []byte
	for {
		n := r.u32()
		if r.err != nil {
			return nil, false, r.err
		}
		if n == 0 {
			break
		}
		if n > uint32(r.left()) || len(out)+int(n) > maxValue {
			r.fail()
			return nil, false, r.err
		}
		out = append(out, r.bytes(int(n))...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, false, nil
}

func decodeValue(ti TypeInfo, d []byte) (any, error) {
	bad := func() (any, error) {
		return nil, fmt.Errorf("%w: %d bytes for type 0x%02x", ErrType, len(d), ti.Type)
	}
	switch ti.Type {
	case TypeInt1, TypeInt2, TypeInt4, TypeInt8, TypeIntN:
		switch len(d) {
		case 1:
			return int64(d[0]), nil // TINYINT is unsigned
		case 2:
			return int64(int16(binary.LittleEndian.Uint16(d))), nil
		case 4:
			return int64(int32(binary.LittleEndian.Uint32(d))), nil
		case 8:
			return int64(binary.LittleEndian.Uint64(d)), nil
		}
		return bad()
	case TypeBit, TypeBitN:
		if len(d) != 1 {
			return bad()
		}
		return d[0] != 0, nil
	case TypeFlt4, TypeFlt8, TypeFltN:
		switch len(d) {
		case 4:
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(d))), nil
		case 8:
			return math.Float64frombits(binary.LittleEndian.Uint64(d)), nil
		}
		return bad()
	case TypeMoney, TypeMoney4, TypeMoneyN:
		var v int64
		switch len(d) {
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(d)))
		case 8:
			v = int64(binary.LittleEndian.Uint32(d))<<32 | int64(binary.LittleEndian.Uint32(d[4:]))
		default:
			return bad()
		}
		return Decimal(formatScaled(big.NewInt(v), 4)), nil
	case TypeDecimal, TypeNumeric, TypeDecimalN, TypeNumericN:
		if len(d) < 2 || len(d) > 17 {
			return bad()
		}
		mag := make([]byte, len(d)-1)
		for i := range mag {
			mag[i] = d[len(d)-1-i] // little-endian to big-endian
		}
		v := new(big.Int).SetBytes(mag)
		if d[0] == 0 {
			v.Neg(v)
		}
		return Decimal(formatScaled(v, int(ti.Scale))), nil
	case TypeGUID:
		if len(d) != 16 {
			return bad()
		}
		return append([]byte(nil), d...), nil
	case TypeDateTime, TypeDateTim4, TypeDateTimeN:
		switch len(d) {
		case 4:
			days := binary.LittleEndian.Uint16(d)
			mins := binary.LittleEndian.Uint16(d[2:])
			return time.Date(1900, 1, 1+int(days), 0, int(mins), 0, 0, time.UTC), nil
		case 8:
			days := int32(binary.LittleEndian.Uint32(d))
			ticks := binary.LittleEndian.Uint32(d[4:]) // 1/300 s
			ns := int64(ticks) * 10_000_000 / 3
			return time.Date(1900, 1, 1+int(days), 0, 0, 0, 0, time.UTC).Add(time.Duration(ns)), nil
		}
		return bad()
	case TypeDateN:
		if len(d) != 3 {
			return bad()
		}
		return dateFromDays(d), nil
	case TypeTimeN, TypeDateTime2N, TypeDateTimeOffset:
		tl := timeLen(ti.Scale)
		want := tl
		if ti.Type == TypeDateTime2N {
			want += 3
		} else if ti.Type == TypeDateTimeOffset {
			want += 5
		}
		if len(d) != want {
			return bad()
		}
		var u uint64
		for i := tl - 1; i >= 0; i-- {
			u = u<<8 | uint64(d[i])
		}
		ns := int64(u)
		for i := ti.Scale; i < 9; i++ {
			ns *= 10
		}
		if ti.Type == TypeTimeN {
			return time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(ns)), nil
		}
		t := dateFromDays(d[tl:]).Add(time.Duration(ns))
		if ti.Type == TypeDateTimeOffset {
			off := int(int16(binary.LittleEndian.Uint16(d[tl+3:])))
			t = t.In(time.FixedZone("", off*60))
		}
		return t, nil
	case TypeNVarChar, TypeNChar, TypeNText:
		if len(d)%2 != 0 {
			return bad()
		}
		return DecodeUCS2(d), nil
	case TypeBigVarChar, TypeBigChar, TypeText, TypeChar, TypeVarChar:
		// Single-byte code page text; the lab's collations are Latin-1 (CP1252) compatible.
		r := make([]rune, len(d))
		for i, c := range d {
			r[i] = rune(c)
		}
		return string(r), nil
	case TypeBigVarBin, TypeBigBinary, TypeImage, TypeBinary, TypeVarBinary:
		return append([]byte(nil), d...), nil
	}
	return nil, fmt.Errorf("%w: type 0x%02x", ErrType, ti.Type)
}

func timeLen(scale uint8) int {
	switch {
	case scale <= 2:
		return 3
	case scale <= 4:
		return 4
	}
	return 5
}

func dateFromDays(d []byte) time.Time {
	days := int(d[0]) | int(d[1])<<8 | int(d[2])<<16
	return time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
}

func formatScaled(v *big.Int, scale int) string {
	neg := v.Sign() < 0
	s := new(big.Int).Abs(v).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// AppendValue encodes v as a value of type ti, as ROW and RETURNVALUE carry
// it (MS-TDS 2.2.4.2.1). nil is NULL. It supports the types the lab sends:
// INTN, BITN, FLTN, DECIMALN, DATETIME2N, NVARCHAR (short and PLP) and
// BIGVARBIN. A string longer than the declared size is cut, since a client
// reads into a buffer of the declared size.
func AppendValue(b []byte, ti TypeInfo, v any) ([]byte, error) {
	switch ti.Type {
	case TypeIntN:
		if v == nil {
			return append(b, 0), nil
		}
		n, ok := toInt64(v)
		if !ok {
			return b, fmt.Errorf("tds: %T is not an integer", v)
		}
		b = append(b, byte(ti.Size))
		switch ti.Size {
		case 1:
			return append(b, byte(n)), nil
		case 2:
			return appendU16(b, uint16(n)), nil
		case 4:
			return appendU32(b, uint32(n)), nil
		}
		return appendU64(b, uint64(n)), nil
	case TypeBitN:
		if v == nil {
			return append(b, 0), nil
		}
		t, ok := v.(bool)
		if !ok {
			return b, fmt.Errorf("tds: %T is not a bool", v)
		}
		if t {
			return append(b, 1, 1), nil
		}
		return append(b, 1, 0), nil
	case TypeFltN:
		if v == nil {
			return append(b, 0), nil
		}
		f, ok := v.(float64)
		if !ok {
			n, isInt := toInt64(v)
			if !isInt {
				return b, fmt.Errorf("tds: %T is not a float", v)
			}
			f = float64(n)
		}
		if ti.Size == 4 {
			return appendU32(append(b, 4), math.Float32bits(float32(f))), nil
		}
		return appendU64(append(b, 8), math.Float64bits(f)), nil
	case TypeDecimalN, TypeNumericN:
		if v == nil {
			return append(b, 0), nil
		}
		return appendDecimal(b, ti, v)
	case TypeDateTime2N:
		if v == nil {
			return append(b, 0), nil
		}
		t, ok := v.(time.Time)
		if !ok {
			return b, fmt.Errorf("tds: %T is not a time", v)
		}
		return appendDateTime2(b, ti.Scale, t), nil
	case TypeNVarChar, TypeNChar:
		if v == nil {
			if ti.PLP {
				return appendU64(b, plpNull), nil
			}
			return appendU16(b, maxShort), nil
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		d := AppendUCS2(nil, s)
		if ti.PLP {
			return appendPLP(b, d), nil
		}
		if len(d) > ti.Size {
			d = d[:ti.Size&^1]
		}
		b = appendU16(b, uint16(len(d)))
		return append(b, d...), nil
	case TypeBigVarBin:
		if v == nil {
			if ti.PLP {
				return appendU64(b, plpNull), nil
			}
			return appendU16(b, maxShort), nil
		}
		d, ok := v.([]byte)
		if !ok {
			return b, fmt.Errorf("tds: %T is not []byte", v)
		}
		if ti.PLP {
			return appendPLP(b, d), nil
		}
		if len(d) > ti.Size {
			d = d[:ti.Size]
		}
		b = appendU16(b, uint16(len(d)))
		return append(b, d...), nil
	}
	return b, fmt.Errorf("tds: cannot encode type 0x%02x", ti.Type)
}

func appendPLP(b, d []byte) []byte {
	b = appendU64(b, uint64(len(d)))
	if len(d) > 0 {
		b = appendU32(b, uint32(len(d)))
		b = append(b, d...)
	}
	return appendU32(b, 0)
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case uint8:
		return int64(n), true
	case bool:
		if n {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// appendDecimal writes a DECIMALN value: length, sign (1 = positive), then
// the unscaled magnitude little-endian in 4, 8, 12 or 16 bytes.
func appendDecimal(b []byte, ti TypeInfo, v any) ([]byte, error) {
	var s string
	switch x := v.(type) {
	case Decimal:
		s = string(x)
	case string:
		s = x
	case float64:
		s = fmt.Sprintf("%.*f", ti.Scale, x)
	default:
		n, ok := toInt64(v)
		if !ok {
			return b, fmt.Errorf("tds: %T is not a decimal", v)
		}
		s = fmt.Sprint(n)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(s, ".")
	for len(fp) < int(ti.Scale) {
		fp += "0"
	}
	fp = fp[:ti.Scale]
	u, ok := new(big.Int).SetString(ip+fp, 10)
	if !ok {
		return b, fmt.Errorf("tds: %q is not a decimal", s)
	}
	mag := u.Bytes()
	size := ti.Size - 1
	if size <= 0 || size > 16 || len(mag) > size {
		return b, fmt.Errorf("tds: decimal %s does not fit %d bytes", s, size)
	}
	b = append(b, byte(ti.Size))
	if neg {
		b = append(b, 0)
	} else {
		b = append(b, 1)
	}
	for i := 0; i < size; i++ {
		if i < len(mag) {
			b = append(b, mag[len(mag)-1-i])
		} else {
			b = append(b, 0)
		}
	}
	return b, nil
}

// DecimalSize is the DECIMALN storage size for a precision (MS-TDS 2.2.5.5.1.5).
func DecimalSize(precision uint8) int {
	switch {
	case precision <= 9:
		return 5
	case precision <= 19:
		return 9
	case precision <= 28:
		return 13
	}
	return 17
}

func appendDateTime2(b []byte, scale uint8, t time.Time) []byte {
	t = t.UTC()
	tl := timeLen(scale)
	b = append(b, byte(tl+3))
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	ns := uint64(t.Sub(midnight))
	for i := scale; i < 9; i++ {
		ns /= 10
	}
	for i := 0; i < tl; i++ {
		b = append(b, byte(ns))
		ns >>= 8
	}
	days := int(midnight.Unix()/86400) + 719162 // 0001-01-01 to 1970-01-01
	return append(b, byte(days), byte(days>>8), byte(days>>16))
}
