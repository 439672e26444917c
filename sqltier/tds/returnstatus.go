package tds

const tokenReturnStatus uint8 = 0x79

// ReturnStatus is the RETURNSTATUS token (MS-TDS 2.2.7.18): the return value
// of a stored procedure (0 for sp_executesql that succeeded).
type ReturnStatus int32

// Marshal appends the token.
func (s ReturnStatus) Marshal(b []byte) []byte {
	return appendU32(append(b, tokenReturnStatus), uint32(s))
}

func unmarshalReturnStatus(r *rd) (ReturnStatus, error) {
	return ReturnStatus(int32(r.u32())), r.err
}
