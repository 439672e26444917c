package tds

import "fmt"

// ENVCHANGE types (MS-TDS 2.2.7.9). go-mssqldb understands 1-13 and 15-20
// and corrupts its stream on any other type, so never send another one.
const (
	EnvDatabase              = 1
	EnvLanguage              = 2
	EnvCharset               = 3
	EnvPacketSize            = 4
	EnvSortLocale            = 5
	EnvSortFlags             = 6
	EnvSQLCollation          = 7
	EnvBeginTran             = 8
	EnvCommitTran            = 9
	EnvRollbackTran          = 10
	EnvEnlistDTC             = 11
	EnvDefectTran            = 12
	EnvMirrorPartner         = 13
	EnvPromoteTran           = 15
	EnvTranManagerAddr       = 16
	EnvTranEnded             = 17
	EnvResetConnection       = 18
	EnvUserInstance          = 19
	EnvRouting               = 20
	tokenEnvChange     uint8 = 0xE3
)

// EnvChange is an ENVCHANGE token. Character-valued types (database,
// language, charset, packet size, sort, mirror partner, user instance) use
// New/Old; binary-valued ones (collation, transactions) use NewBytes/OldBytes.
type EnvChange struct {
	Type     uint8
	New, Old string
	NewBytes []byte
	OldBytes []byte
}

func envIsString(t uint8) bool {
	switch t {
	case EnvDatabase, EnvLanguage, EnvCharset, EnvPacketSize, EnvSortLocale, EnvSortFlags, EnvMirrorPartner, EnvUserInstance:
		return true
	}
	return false
}

// Marshal appends the token.
func (e EnvChange) Marshal(b []byte) []byte {
	var v []byte
	v = append(v, e.Type)
	switch {
	case envIsString(e.Type):
		v = AppendBVarChar(v, e.New)
		v = AppendBVarChar(v, e.Old)
	case e.Type == EnvResetConnection:
		v = append(v, 0, 0)
	case e.Type == EnvPromoteTran: // LONGLEN new value, BYTELEN 0 old value
		v = appendU32(v, uint32(len(e.NewBytes)))
		v = append(v, e.NewBytes...)
		v = append(v, 0)
	case e.Type == EnvRouting: // USHORTLEN new value (the routing data), USHORT 0
		v = appendU16(v, uint16(len(e.NewBytes)))
		v = append(v, e.NewBytes...)
		v = append(v, 0, 0)
	default:
		v = append(v, byte(len(e.NewBytes)))
		v = append(v, e.NewBytes...)
		v = append(v, byte(len(e.OldBytes)))
		v = append(v, e.OldBytes...)
	}
	b = append(b, tokenEnvChange)
	b = appendU16(b, uint16(len(v)))
	return append(b, v...)
}

// unmarshalEnvChange decodes the token body after the token byte.
func unmarshalEnvChange(r *rd) (EnvChange, error) {
	n := int(r.u16())
	body := r.bytes(n)
	if r.err != nil {
		return EnvChange{}, r.err
	}
	br := &rd{b: body}
	e := EnvChange{Type: br.u8()}
	switch {
	case envIsString(e.Type):
		e.New = br.bvarchar()
		e.Old = br.bvarchar()
	case e.Type == EnvResetConnection:
		br.bytes(2)
	case e.Type == EnvPromoteTran:
		e.NewBytes = br.bytes(int(br.u32()))
		br.u8()
	case e.Type == EnvRouting:
		e.NewBytes = br.bytes(int(br.u16()))
		br.u16()
	default:
		e.NewBytes = br.bytes(int(br.u8()))
		e.OldBytes = br.bytes(int(br.u8()))
	}
	if br.err != nil {
		return e, fmt.Errorf("tds: malformed ENVCHANGE type %d", e.Type)
	}
	return e, nil
}
