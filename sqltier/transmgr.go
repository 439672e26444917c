package sqltier

import (
	"encoding/binary"
	"fmt"

	"github.com/doublehop/doublehop/sqltier/tds"
)

// transMgr answers transaction manager requests (MS-TDS 2.2.6.9). The lab
// has nothing to write, so a transaction is only its descriptor: BEGIN hands
// one out (ENVCHANGE 8), COMMIT and ROLLBACK end it (ENVCHANGE 9/10).
func (c *conn) transMgr(m *tds.Message) error {
	var t tds.TransMgrRequest
	if err := t.Unmarshal(m.Data, !c.tok.Legacy); err != nil {
		return err
	}
	desc := func(id uint64) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, id)
		return b
	}
	switch t.Type {
	case tds.TMBeginXact:
		if c.sess.tranID != 0 {
			c.tok.Message(c.errorMsg(8134, 1, 16, "A transaction is already active on this session (nested transactions are not supported by the lab)."))
			c.tok.Done(tds.Done{Status: tds.DoneError})
			return c.sendTokens()
		}
		c.sess.tranID = uint64(c.spid)<<32 | uint64(c.srv.cfg.Now().UnixNano()&0xFFFFFFFF) | 1
		c.tok.EnvChange(tds.EnvChange{Type: tds.EnvBeginTran, NewBytes: desc(c.sess.tranID)})
	case tds.TMCommitXact, tds.TMRollbackXact:
		typ := uint8(tds.EnvCommitTran)
		if t.Type == tds.TMRollbackXact {
			typ = tds.EnvRollbackTran
		}
		if c.sess.tranID == 0 {
			c.tok.Message(c.errorMsg(3902, 1, 16, fmt.Sprintf("The %s TRANSACTION request has no corresponding BEGIN TRANSACTION.", map[bool]string{true: "ROLLBACK", false: "COMMIT"}[t.Type == tds.TMRollbackXact])))
			c.tok.Done(tds.Done{Status: tds.DoneError})
			return c.sendTokens()
		}
		c.tok.EnvChange(tds.EnvChange{Type: typ, OldBytes: desc(c.sess.tranID)})
		c.sess.tranID = 0
	default:
		c.tok.Message(c.errorMsg(40517, 1, 16, fmt.Sprintf("Keyword or statement option 'transaction manager request %d' is not supported in this version of SQL Server.", t.Type)))
		c.tok.Done(tds.Done{Status: tds.DoneError})
		return c.sendTokens()
	}
	c.tok.Done(tds.Done{})
	return c.sendTokens()
}
