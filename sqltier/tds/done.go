package tds

// DONE, DONEPROC and DONEINPROC tokens (MS-TDS 2.2.7.6, 2.2.7.7, 2.2.7.8).
const (
	TokenDone       uint8 = 0xFD
	TokenDoneProc   uint8 = 0xFE
	TokenDoneInProc uint8 = 0xFF
)

// DONE status bits (MS-TDS 2.2.7.6).
const (
	DoneFinal    = 0x0000
	DoneMore     = 0x0001 // more results follow in this response
	DoneError    = 0x0002
	DoneInxact   = 0x0004
	DoneCount    = 0x0010 // RowCount is valid
	DoneAttn     = 0x0020 // acknowledges an ATTENTION
	DoneSrvError = 0x0100 // severe error: the client discards the results
)

// CurCmd values the lab uses (the SQL Server statement token numbers).
const (
	CmdNone    = 0x00
	CmdSelect  = 0xC1
	CmdExecute = 0xE0
)

// Done is the body shared by the three DONE tokens. Token is TokenDone,
// TokenDoneProc or TokenDoneInProc.
type Done struct {
	Token    uint8
	Status   uint16
	CurCmd   uint16
	RowCount uint64
}

// Marshal appends the token; legacy (TDS 7.0/7.1) writes a 32-bit row count.
// The last token of a response must be DONE or DONEPROC with DoneMore clear.
func (d Done) Marshal(b []byte, legacy bool) []byte {
	tok := d.Token
	if tok == 0 {
		tok = TokenDone
	}
	b = append(b, tok)
	b = appendU16(b, d.Status)
	b = appendU16(b, d.CurCmd)
	if legacy {
		return appendU32(b, uint32(d.RowCount))
	}
	return appendU64(b, d.RowCount)
}

func unmarshalDone(r *rd, tok uint8, legacy bool) (Done, error) {
	d := Done{Token: tok, Status: r.u16(), CurCmd: r.u16()}
	if legacy {
		d.RowCount = uint64(r.u32())
	} else {
		d.RowCount = r.u64()
	}
	return d, r.err
}
