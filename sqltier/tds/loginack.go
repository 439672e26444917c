package tds

const tokenLoginAck uint8 = 0xAD

// LoginAck is the LOGINACK token (MS-TDS 2.2.7.14).
type LoginAck struct {
	Interface  uint8  // 1 = SQL_TSQL
	TDSVersion uint32 // big-endian on the wire, e.g. 0x74000004
	ProgName   string // "Microsoft SQL Server"
	Major      uint8  // product version 16.0.4000 = 16, 0, 0x0F, 0xA0
	Minor      uint8
	BuildHi    uint8
	BuildLow   uint8
}

// Marshal appends the token.
func (a LoginAck) Marshal(b []byte) []byte {
	v := []byte{a.Interface, byte(a.TDSVersion >> 24), byte(a.TDSVersion >> 16), byte(a.TDSVersion >> 8), byte(a.TDSVersion)}
	v = AppendBVarChar(v, a.ProgName)
	v = append(v, a.Major, a.Minor, a.BuildHi, a.BuildLow)
	b = append(b, tokenLoginAck)
	b = appendU16(b, uint16(len(v)))
	return append(b, v...)
}

func unmarshalLoginAck(r *rd) (LoginAck, error) {
	body := r.bytes(int(r.u16()))
	if r.err != nil {
		return LoginAck{}, r.err
	}
	br := &rd{b: body}
	a := LoginAck{Interface: br.u8()}
	v := br.bytes(4)
	if v != nil {
		a.TDSVersion = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	}
	a.ProgName = br.bvarchar()
	a.Major, a.Minor, a.BuildHi, a.BuildLow = br.u8(), br.u8(), br.u8(), br.u8()
	return a, br.err
}
