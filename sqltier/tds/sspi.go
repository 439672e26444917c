package tds

const tokenSSPI uint8 = 0xED

// SSPIToken is the SSPI token (MS-TDS 2.2.7.22): a security blob from the
// server, such as an AP-REP for mutual authentication. It must travel alone
// in its own message: go-mssqldb drops whatever follows it in the packet.
type SSPIToken []byte

// Marshal appends the token (at most 65535 bytes of blob).
func (s SSPIToken) Marshal(b []byte) []byte {
	d := []byte(s)
	if len(d) > 0xFFFF {
		d = d[:0xFFFF]
	}
	b = appendU16(append(b, tokenSSPI), uint16(len(d)))
	return append(b, d...)
}

func unmarshalSSPI(r *rd) (SSPIToken, error) {
	return SSPIToken(r.bytes(int(r.u16()))), r.err
}
