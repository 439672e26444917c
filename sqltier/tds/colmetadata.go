package tds

import "fmt"

const tokenColMetadata uint8 = 0x81

// Column flags (MS-TDS 2.2.7.4).
const (
	ColNullable  = 0x0001
	ColUpdatable = 0x0008 // read/write
	ColIdentity  = 0x0010
	ColEncrypted = 0x0800 // Always Encrypted: CRYPTO_METADATA follows, which the lab neither sends nor reads
)

// Column describes one result column.
type Column struct {
	Name     string
	Type     TypeInfo
	Flags    uint16
	UserType uint32
}

// Common column types the lab sends.
func NVarChar(chars int) TypeInfo {
	return TypeInfo{Type: TypeNVarChar, Size: 2 * chars, Collation: DefaultCollation}
}

// NVarCharMax is nvarchar(max): values travel as PLP.
func NVarCharMax() TypeInfo {
	return TypeInfo{Type: TypeNVarChar, Size: maxShort, PLP: true, Collation: DefaultCollation}
}

// IntN is INTN of 1 (tinyint), 2 (smallint), 4 (int) or 8 (bigint) bytes.
func IntN(size int) TypeInfo { return TypeInfo{Type: TypeIntN, Size: size} }

// BitN is bit.
func BitN() TypeInfo { return TypeInfo{Type: TypeBitN, Size: 1} }

// FltN is float (8) or real (4).
func FltN(size int) TypeInfo { return TypeInfo{Type: TypeFltN, Size: size} }

// DecimalN is decimal(p,s).
func DecimalN(p, s uint8) TypeInfo {
	return TypeInfo{Type: TypeDecimalN, Size: DecimalSize(p), Precision: p, Scale: s}
}

// DateTime2N is datetime2(scale).
func DateTime2N(scale uint8) TypeInfo { return TypeInfo{Type: TypeDateTime2N, Scale: scale} }

// ColMetadata is the COLMETADATA token (MS-TDS 2.2.7.4).
type ColMetadata []Column

// Marshal appends the token; legacy (TDS 7.0/7.1) writes 16-bit UserTypes.
// Encrypted columns (ColEncrypted) are never announced.
func (c ColMetadata) Marshal(b []byte, legacy bool) []byte {
	b = append(b, tokenColMetadata)
	b = appendU16(b, uint16(len(c)))
	for _, col := range c {
		if legacy {
			b = appendU16(b, uint16(col.UserType))
		} else {
			b = appendU32(b, col.UserType)
		}
		b = appendU16(b, col.Flags&^ColEncrypted)
		b = AppendTypeInfo(b, col.Type)
		b = AppendBVarChar(b, col.Name)
	}
	return b
}

func unmarshalColMetadata(r *rd, legacy bool) (ColMetadata, error) {
	n := int(r.u16())
	if n == 0xFFFF || n == 0 { // no metadata (MS-TDS 2.2.7.4); a count of 0 says the same
		return nil, r.err
	}
	if n > r.left() {
		return nil, ErrShort
	}
	cols := make(ColMetadata, 0, n)
	for i := 0; i < n; i++ {
		var c Column
		if legacy {
			c.UserType = uint32(r.u16())
		} else {
			c.UserType = r.u32()
		}
		c.Flags = r.u16()
		if c.Flags&ColEncrypted != 0 {
			return nil, fmt.Errorf("%w: an encrypted column (Always Encrypted is not supported)", ErrType)
		}
		ti, err := readTypeInfo(r)
		if err != nil {
			return nil, err
		}
		if ti.Type == TypeText || ti.Type == TypeNText || ti.Type == TypeImage {
			return nil, fmt.Errorf("%w: TEXT columns are not supported", ErrType)
		}
		c.Type = ti
		c.Name = r.bvarchar()
		if r.err != nil {
			return nil, r.err
		}
		cols = append(cols, c)
	}
	return cols, nil
}
