package sqltier

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/sqltier/tds"
	"github.com/doublehop/doublehop/sqltier/tsql"
)

// errAttention: the client sent ATTENTION while a statement ran.
var errAttention = errors.New("attention")

// output tracks the response of one request: DONE tokens carry MORE until
// the last one (MS-TDS 2.2.7.6), and inside RPC they are DONEINPROC.
type output struct {
	c    *conn
	rpc  bool
	last int // offset of the last DONE token, -1 when none
	err  bool
}

func (c *conn) newOutput(rpc bool) *output { return &output{c: c, rpc: rpc, last: -1} }

func (o *output) done(status, cmd uint16, rows uint64) {
	o.last = len(o.c.tok.B)
	tok := tds.TokenDone
	if o.rpc {
		tok = tds.TokenDoneInProc
	}
	o.c.tok.Done(tds.Done{Token: tok, Status: status | tds.DoneMore, CurCmd: cmd, RowCount: rows})
}

func (o *output) sqlError(e *tsql.Error) {
	o.c.tok.Message(o.c.errorMsg(e.Number, e.State, e.Class, e.Text))
	o.err = true
}

// The engine's results, as tokens (tsql.Output).
func (o *output) Done(status, cmd uint16, rows uint64)        { o.done(status, cmd, rows) }
func (o *output) Info(number int32, state uint8, text string) { o.c.info(number, state, text) }
func (o *output) EnvChange(e tds.EnvChange)                   { o.c.tok.EnvChange(e) }
func (o *output) Rows(cols tds.ColMetadata, rows []tds.Row) error {
	o.c.tok.ColMetadata(cols)
	for _, r := range rows {
		if err := o.c.tok.Row(cols, r); err != nil {
			return err
		}
	}
	return nil
}

// finish closes the response: the last DONE loses MORE (a batch), or
// RETURNSTATUS + DONEPROC close the procedure (RPC); an error aborts the
// batch with DONE(ERROR) / DONEPROC(ERROR).
func (o *output) finish(attention bool) {
	t := &o.c.tok
	switch {
	case attention:
		t.Done(tds.Done{Status: tds.DoneAttn})
	case o.rpc && o.err:
		t.Done(tds.Done{Token: tds.TokenDoneProc, Status: tds.DoneError, CurCmd: tds.CmdExecute})
	case o.rpc:
		t.ReturnStatus(0)
		t.Done(tds.Done{Token: tds.TokenDoneProc, CurCmd: tds.CmdExecute})
	case o.err:
		t.Done(tds.Done{Status: tds.DoneError})
	case o.last < 0:
		t.Done(tds.Done{})
	default:
		t.B[o.last+1] &^= tds.DoneMore // status is little-endian after the token byte
	}
}

// sqlBatch runs a SQLBatch request (MS-TDS 2.2.6.7).
func (c *conn) sqlBatch(m *tds.Message) error {
	var b tds.SQLBatch
	if err := b.Unmarshal(m.Data, !c.tok.Legacy); err != nil {
		return err
	}
	c.srv.log.Debug("batch", "spid", c.spid, "sql", truncate(b.SQL, 200))
	o := c.newOutput(false)
	err := c.runSQL(o, b.SQL, nil)
	if err != nil && !errors.Is(err, errAttention) {
		return err
	}
	o.finish(errors.Is(err, errAttention))
	return c.sendTokens()
}

// rpc runs an RPC request (MS-TDS 2.2.6.6): sp_executesql, by number or
// name; other procedures do not exist here (2812).
func (c *conn) rpc(m *tds.Message) error {
	var q tds.RPCRequest
	if err := q.Unmarshal(m.Data, !c.tok.Legacy); err != nil {
		if errors.Is(err, tds.ErrRPC) && !errors.Is(err, tds.ErrShort) {
			// A well-framed call with a parameter type the lab does not
			// decode: answer like SQL Server's TDS RPC protocol error.
			o := c.newOutput(true)
			o.sqlError(tsql.NewError(8016, 1, 16, "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. "+strings.TrimPrefix(err.Error(), "tds: ")))
			o.finish(false)
			return c.sendTokens()
		}
		return err
	}
	var attention bool
	for i := range q.Calls {
		call := &q.Calls[i]
		o := c.newOutput(true)
		err := c.rpcCall(o, call)
		if err != nil && !errors.Is(err, errAttention) {
			return err
		}
		attention = errors.Is(err, errAttention)
		o.finish(attention)
		if attention {
			break
		}
		// Several calls in one request: every DONEPROC but the last has MORE.
		if i < len(q.Calls)-1 {
			n := len(c.tok.B) - 13 // DONEPROC: token, status u16, curcmd u16, rowcount u64
			if c.tok.Legacy {
				n = len(c.tok.B) - 9
			}
			c.tok.B[n+1] |= tds.DoneMore
		}
	}
	return c.sendTokens()
}

func (c *conn) rpcCall(o *output, call *tds.RPCCall) error {
	if !call.IsExecuteSQL() {
		name := call.Name
		if name == "" {
			name = fmt.Sprintf("procedure id %d", call.ProcID)
		}
		o.sqlError(tsql.NewError(2812, 62, 16, fmt.Sprintf("Could not find stored procedure '%s'.", name)))
		return nil
	}
	if len(call.Params) == 0 {
		o.sqlError(tsql.NewError(201, 4, 16, "Procedure or function 'sp_executesql' expects parameter '@statement', which was not supplied."))
		return nil
	}
	stmt, ok := call.Params[0].Value.(string)
	if !ok {
		o.sqlError(tsql.NewError(214, 2, 16, "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'."))
		return nil
	}
	params := map[string]tds.Param{}
	for i, p := range call.Params[1:] {
		if i == 0 && p.Name == "" {
			continue // @params: the declaration string
		}
		name := strings.ToLower(p.Name)
		if !strings.HasPrefix(name, "@") {
			name = "@" + name
		}
		params[name] = p
	}
	c.srv.log.Debug("rpc sp_executesql", "spid", c.spid, "sql", truncate(stmt, 200), "params", len(params))
	return c.runSQL(o, stmt, params)
}

// runSQL runs a batch with the T-SQL engine, as this connection's session.
func (c *conn) runSQL(o *output, sql string, params map[string]tds.Param) error {
	s := c.sess
	ses := &tsql.Session{Login: s.login, Host: s.host, App: s.app, SPID: int(c.spid), InTransaction: s.tranID != 0,
		ServerName: c.srv.cfg.ServerName, Version: c.srv.version(), Database: s.database, Now: c.srv.cfg.Now,
		Databases: c.srv.database, Tables: c.tables(), Wait: c.waitfor}
	serr, err := tsql.Run(sql, ses, params, o)
	s.database = ses.Database
	if err != nil {
		return err
	}
	if serr != nil {
		o.sqlError(serr)
	}
	return nil
}

// waitfor sleeps for WAITFOR DELAY, watching the socket for ATTENTION.
func (c *conn) waitfor(d time.Duration) error {
	if c.pending == nil {
		c.pending = c.startRead(c.srv.cfg.Now().Add(d + c.srv.cfg.IdleTimeout))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case res := <-c.pending:
		c.pending = nil
		if res.err != nil {
			return res.err
		}
		if res.msg.Type == tds.PacketAttention {
			return errAttention
		}
		return fmt.Errorf("%w: %v while a request is running (no MARS)", tds.ErrUnexpectedType, res.msg.Type)
	}
}

func (s *Server) version() string {
	return fmt.Sprintf("Microsoft SQL Server 2022 (RTM-CU) - %d.%d.%d.0 (X64) \n\tdoublehop lab TDS server (Go; a fixed lab query surface, not a SQL engine) on %s\n", prodMajor, prodMinor, prodBuild, s.cfg.Host)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
