package tds

import "fmt"

// Transaction manager request types (MS-TDS 2.2.6.9).
const (
	TMGetDTCAddress = 0
	TMPropagateXact = 1
	TMBeginXact     = 5
	TMPromoteXact   = 6
	TMCommitXact    = 7
	TMRollbackXact  = 8
	TMSaveXact      = 9
)

// TransMgrRequest is the transaction manager request (MS-TDS 2.2.6.9):
// go-mssqldb sends it for BeginTx, Commit and Rollback.
type TransMgrRequest struct {
	Headers   AllHeaders
	Type      uint16
	Isolation uint8  // TM_BEGIN_XACT
	Name      string // TM_BEGIN/COMMIT/ROLLBACK/SAVE_XACT
	Payload   []byte // the request payload as sent
}

// Unmarshal decodes the request.
func (t *TransMgrRequest) Unmarshal(b []byte, tds72 bool) error {
	*t = TransMgrRequest{}
	r := &rd{b: b}
	var err error
	if t.Headers, err = readAllHeadersIf(r, tds72); err != nil {
		return err
	}
	t.Type = r.u16()
	if r.err != nil {
		return fmt.Errorf("tds: malformed TransMgr request: %w", r.err)
	}
	t.Payload = r.b[r.off:]
	switch t.Type {
	case TMBeginXact:
		t.Isolation = r.u8()
		t.Name = r.bvarchar()
	case TMCommitXact, TMRollbackXact, TMSaveXact:
		t.Name = r.bvarchar()
	}
	if r.err != nil {
		return fmt.Errorf("tds: malformed TransMgr request type %d: %w", t.Type, r.err)
	}
	return nil
}
