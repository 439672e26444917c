package sqltier

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/sqltier/tds"
)

// errAttention: the client sent ATTENTION while a statement ran.
var errAttention = errors.New("attention")

// maxWaitfor bounds WAITFOR DELAY (a lab convenience to exercise ATTENTION).
const maxWaitfor = 5 * time.Minute

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

func (o *output) sqlError(e *sqlError) {
	o.c.tok.Message(o.c.errorMsg(e.number, e.state, e.class, e.text))
	o.err = true
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
			o.sqlError(&sqlError{8016, 1, 16, "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. " + strings.TrimPrefix(err.Error(), "tds: ")})
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
		o.sqlError(&sqlError{2812, 62, 16, fmt.Sprintf("Could not find stored procedure '%s'.", name)})
		return nil
	}
	if len(call.Params) == 0 {
		o.sqlError(&sqlError{201, 4, 16, "Procedure or function 'sp_executesql' expects parameter '@statement', which was not supplied."})
		return nil
	}
	stmt, ok := call.Params[0].Value.(string)
	if !ok {
		o.sqlError(&sqlError{214, 2, 16, "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'."})
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

// runSQL parses the whole batch (a syntax error runs nothing), then runs
// its statements; the first error aborts the rest, as a compile error does
// on SQL Server.
func (c *conn) runSQL(o *output, sql string, params map[string]tds.Param) error {
	stmts, perr := parseBatch(sql)
	if perr != nil {
		o.sqlError(perr)
		return nil
	}
	for _, st := range stmts {
		var serr *sqlError
		var err error
		switch st := st.(type) {
		case *selectStmt:
			serr = c.execSelect(o, st, params)
		case *setStmt:
			o.done(0, 0, 0)
		case *useStmt:
			serr = c.execUse(o, st)
		case *waitforStmt:
			serr, err = c.execWaitfor(o, st, params)
		case *dmlStmt:
			serr = c.execDML(st)
		case *execStmt:
			serr = &sqlError{2812, 62, 16, fmt.Sprintf("Could not find stored procedure '%s'.", st.proc)}
		}
		if err != nil {
			return err
		}
		if serr != nil {
			o.sqlError(serr)
			return nil
		}
	}
	return nil
}

func (c *conn) execUse(o *output, u *useStmt) *sqlError {
	name, ok := c.srv.database(u.db)
	if !ok {
		return &sqlError{911, 1, 16, fmt.Sprintf("Database '%s' does not exist. Make sure that the name is entered correctly.", u.db)}
	}
	old := c.sess.database
	c.sess.database = name
	c.tok.EnvChange(tds.EnvChange{Type: tds.EnvDatabase, New: name, Old: old})
	c.info(5701, 1, fmt.Sprintf("Changed database context to '%s'.", name))
	o.done(0, 0, 0)
	return nil
}

func (c *conn) execDML(d *dmlStmt) *sqlError {
	v, serr := c.resolve(&d.obj)
	if serr != nil {
		return serr
	}
	db := v.db
	if db == "" {
		db = c.sess.database
	}
	return &sqlError{229, 5, 14, fmt.Sprintf("The %s permission was denied on the object '%s', database '%s', schema '%s'.", d.verb, v.name, db, v.schema)}
}

// execWaitfor sleeps, watching the socket for ATTENTION.
func (c *conn) execWaitfor(o *output, w *waitforStmt, params map[string]tds.Param) (*sqlError, error) {
	ev, serr := c.compileExpr(w.delay, nil, params)
	if serr != nil {
		return serr, nil
	}
	v, serr := ev.eval(nil)
	if serr != nil {
		return serr, nil
	}
	s, ok := v.(string)
	d, perr := parseDelay(s)
	if !ok || perr != nil || d > maxWaitfor {
		return &sqlError{148, 1, 15, "Incorrect time syntax in time string '" + fmt.Sprint(v) + "' used with WAITFOR."}, nil
	}
	if c.pending == nil {
		c.pending = c.startRead(c.srv.cfg.Now().Add(d + c.srv.cfg.IdleTimeout))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		o.done(0, 0, 0)
		return nil, nil
	case res := <-c.pending:
		c.pending = nil
		if res.err != nil {
			return nil, res.err
		}
		if res.msg.Type == tds.PacketAttention {
			return nil, errAttention
		}
		return nil, fmt.Errorf("%w: %v while a request is running (no MARS)", tds.ErrUnexpectedType, res.msg.Type)
	}
}

// parseDelay reads WAITFOR DELAY's 'hh:mm[:ss[.mmm]]'.
func parseDelay(s string) (time.Duration, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, errors.New("bad time")
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec := 0.0
	var err3 error
	if len(parts) == 3 {
		sec, err3 = strconv.ParseFloat(parts[2], 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, errors.New("bad time")
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), nil
}

// evaluator computes one output column.
type evaluator struct {
	ti   tds.TypeInfo
	name string
	agg  bool // COUNT
	eval func(row []any) (any, *sqlError)
	// count is the aggregate's per-row contribution test (COUNT(expr) skips NULL).
	count  func(row []any) (bool, *sqlError)
	colIdx int // source column index for column references, -1 otherwise
}

// scope is the FROM object a statement reads.
type scope struct {
	v     *view
	alias string
}

func (sc *scope) find(e *expr) (int, *sqlError) {
	if sc == nil || sc.v == nil {
		return -1, &sqlError{207, 1, 16, fmt.Sprintf("Invalid column name '%s'.", e.name)}
	}
	if e.qual != "" {
		q := strings.ToLower(e.qual)
		ok := q == strings.ToLower(sc.v.name) || q == strings.ToLower(sc.v.schema+"."+sc.v.name) ||
			(sc.alias != "" && q == strings.ToLower(sc.alias)) || strings.HasSuffix(q, "."+strings.ToLower(sc.v.schema+"."+sc.v.name))
		if sc.alias != "" && q != strings.ToLower(sc.alias) {
			ok = false // an aliased table is only known by its alias
		}
		if !ok {
			return -1, &sqlError{4104, 1, 16, fmt.Sprintf("The multi-part identifier \"%s\" could not be bound.", e.text)}
		}
	}
	for i, cl := range sc.v.cols {
		if strings.EqualFold(cl.Name, e.name) {
			return i, nil
		}
	}
	return -1, &sqlError{207, 1, 16, fmt.Sprintf("Invalid column name '%s'.", e.name)}
}

// compileExpr types an expression and returns its evaluator.
func (c *conn) compileExpr(e *expr, sc *scope, params map[string]tds.Param) (*evaluator, *sqlError) {
	constant := func(ti tds.TypeInfo, v any) (*evaluator, *sqlError) {
		return &evaluator{ti: ti, colIdx: -1, eval: func([]any) (any, *sqlError) { return v, nil }}, nil
	}
	s := c.sess
	switch e.kind {
	case eLit:
		switch v := e.lit.(type) {
		case nil:
			return constant(tds.IntN(4), nil)
		case int64:
			if v >= -1<<31 && v < 1<<31 {
				return constant(tds.IntN(4), v)
			}
			return constant(tds.IntN(8), v)
		case decimalLit:
			digits := len(strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(v.s), "0"))
			p := max(digits, v.scale, 1)
			if p > 38 {
				return nil, &sqlError{1007, 1, 15, fmt.Sprintf("The number '%s' is out of the range for numeric representation (maximum precision 38).", e.text)}
			}
			return constant(tds.DecimalN(uint8(p), uint8(v.scale)), tds.Decimal(v.s))
		case string:
			return constant(tds.NVarChar(max(tds.UCS2Len(v), 1)), v)
		}
	case eVar:
		p, ok := params[strings.ToLower(e.name)]
		if !ok {
			return nil, &sqlError{137, 2, 15, fmt.Sprintf("Must declare the scalar variable \"%s\".", e.name)}
		}
		ti, v := paramColumn(p)
		return constant(ti, v)
	case eSysVar:
		switch e.name {
		case "@@SPID":
			return constant(tds.IntN(2), int64(c.spid))
		case "@@VERSION":
			return constant(tds.NVarChar(300), c.srv.version())
		case "@@SERVERNAME":
			return constant(tds.NVarChar(128), c.srv.cfg.ServerName)
		case "@@SERVICENAME":
			return constant(tds.NVarChar(128), "MSSQLSERVER")
		case "@@LANGUAGE":
			return constant(tds.NVarChar(128), "us_english")
		case "@@TRANCOUNT":
			n := int64(0)
			if s.tranID != 0 {
				n = 1
			}
			return constant(tds.IntN(4), n)
		case "@@MAX_PRECISION":
			return constant(tds.IntN(1), int64(38))
		}
		return nil, &sqlError{137, 2, 15, fmt.Sprintf("Must declare the scalar variable \"%s\".", e.text)}
	case eFunc:
		name128 := func(v string) (*evaluator, *sqlError) {
			if len(e.args) > 0 || e.star {
				return nil, &sqlError{174, 1, 15, fmt.Sprintf("The %s function takes 0 arguments.", strings.ToLower(e.name))}
			}
			return constant(tds.NVarChar(128), v)
		}
		switch e.name {
		case "SUSER_SNAME", "SUSER_NAME", "ORIGINAL_LOGIN", "SYSTEM_USER":
			return name128(s.login)
		case "USER_NAME", "CURRENT_USER", "SESSION_USER", "USER":
			return name128(s.login) // the database user of a Windows login carries its name
		case "DB_NAME":
			return name128(s.database)
		case "HOST_NAME":
			return name128(s.host)
		case "APP_NAME":
			return name128(s.app)
		case "GETDATE", "GETUTCDATE", "SYSDATETIME", "CURRENT_TIMESTAMP":
			now := c.srv.cfg.Now()
			if e.name != "GETUTCDATE" {
				now = now.Local()
			}
			t := time.Date(now.Year(), now.Month(), now.Day(), now.Hour(), now.Minute(), now.Second(), now.Nanosecond(), time.UTC)
			scale := uint8(3)
			if e.name == "SYSDATETIME" {
				scale = 7
			}
			return constant(tds.DateTime2N(scale), t)
		case "COUNT":
			if e.star {
				return &evaluator{ti: tds.IntN(4), agg: true, colIdx: -1, count: func([]any) (bool, *sqlError) { return true, nil }}, nil
			}
			if len(e.args) != 1 {
				return nil, &sqlError{174, 1, 15, "The count function requires 1 argument(s)."}
			}
			inner, serr := c.compileExpr(e.args[0], sc, params)
			if serr != nil {
				return nil, serr
			}
			return &evaluator{ti: tds.IntN(4), agg: true, colIdx: -1, count: func(row []any) (bool, *sqlError) {
				v, serr := inner.eval(row)
				return v != nil, serr
			}}, nil
		case "SUM", "MIN", "MAX", "AVG", "STRING_AGG", "SERVERPROPERTY", "CAST", "CONVERT", "ISNULL", "COALESCE":
			return nil, errNotSupported(e.name)
		}
		return nil, &sqlError{195, 10, 15, fmt.Sprintf("'%s' is not a recognized built-in function name.", strings.TrimSuffix(e.text, "()"))}
	case eCol:
		i, serr := sc.find(e)
		if serr != nil {
			return nil, serr
		}
		return &evaluator{ti: sc.v.cols[i].Type, name: sc.v.cols[i].Name, colIdx: i,
			eval: func(row []any) (any, *sqlError) { return row[i], nil }}, nil
	}
	return nil, &sqlError{102, 1, 15, fmt.Sprintf("Incorrect syntax near '%s'.", e.text)}
}

// paramColumn types an sp_executesql parameter for a result column.
func paramColumn(p tds.Param) (tds.TypeInfo, any) {
	switch v := p.Value.(type) {
	case nil:
		if p.Type.Type == tds.TypeNVarChar || p.Type.Type == tds.TypeBigVarChar {
			return tds.NVarChar(1), nil
		}
		return tds.IntN(4), nil
	case int64:
		size := p.Type.Size
		if size != 1 && size != 2 && size != 4 && size != 8 {
			size = 8
		}
		return tds.IntN(size), v
	case bool:
		return tds.BitN(), v
	case float64:
		return tds.FltN(8), v
	case string:
		if tds.UCS2Len(v) > 4000 {
			return tds.NVarCharMax(), v
		}
		return tds.NVarChar(max(tds.UCS2Len(v), 1)), v
	case []byte:
		return tds.TypeInfo{Type: tds.TypeBigVarBin, Size: 0xFFFF, PLP: true}, v
	case time.Time:
		return tds.DateTime2N(7), v.UTC()
	case tds.Decimal:
		scale := 0
		if _, f, ok := strings.Cut(string(v), "."); ok {
			scale = len(f)
		}
		return tds.DecimalN(38, uint8(min(scale, 38))), v
	}
	return tds.NVarChar(4000), fmt.Sprint(p.Value)
}

func (c *conn) execSelect(o *output, s *selectStmt, params map[string]tds.Param) *sqlError {
	var sc *scope
	if s.from != nil {
		v, serr := c.resolve(s.from)
		if serr != nil {
			return serr
		}
		sc = &scope{v: v, alias: s.alias}
	}
	var evs []*evaluator
	var cols tds.ColMetadata
	for _, it := range s.items {
		if it.star {
			if sc == nil {
				return &sqlError{263, 1, 16, "Must specify table to select from."}
			}
			if it.starQual != "" && !strings.EqualFold(it.starQual, sc.v.name) && !strings.EqualFold(it.starQual, sc.alias) {
				return &sqlError{107, 1, 15, fmt.Sprintf("The column prefix '%s' does not match with a table name or alias name used in the query.", it.starQual)}
			}
			for i, cl := range sc.v.cols {
				i := i
				evs = append(evs, &evaluator{ti: cl.Type, name: cl.Name, colIdx: i, eval: func(row []any) (any, *sqlError) { return row[i], nil }})
				cols = append(cols, cl)
			}
			continue
		}
		ev, serr := c.compileExpr(it.e, sc, params)
		if serr != nil {
			return serr
		}
		name := ev.name
		if it.alias != "" {
			name = it.alias
		}
		evs = append(evs, ev)
		flags := uint16(tds.ColNullable)
		if ev.colIdx >= 0 {
			flags = sc.v.cols[ev.colIdx].Flags
		}
		cols = append(cols, tds.Column{Name: name, Type: ev.ti, Flags: flags})
	}
	var where []func(row []any) (bool, *sqlError)
	for _, p := range s.where {
		f, serr := c.compilePred(p, sc, params)
		if serr != nil {
			return serr
		}
		where = append(where, f)
	}
	src := [][]any{nil}
	if sc != nil {
		src = sc.v.rows(c)
	}
	var kept [][]any
	for _, row := range src {
		ok := true
		for _, f := range where {
			pass, serr := f(row)
			if serr != nil {
				return serr
			}
			if !pass {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, row)
		}
	}
	agg := false
	for _, ev := range evs {
		agg = agg || ev.agg
	}
	var out []tds.Row
	if agg {
		row := make(tds.Row, len(evs))
		for i, ev := range evs {
			switch {
			case ev.agg:
				n := int64(0)
				for _, r := range kept {
					ok, serr := ev.count(r)
					if serr != nil {
						return serr
					}
					if ok {
						n++
					}
				}
				row[i] = n
			case ev.colIdx >= 0:
				return &sqlError{8120, 1, 16, fmt.Sprintf("Column '%s.%s' is invalid in the select list because it is not contained in either an aggregate function or the GROUP BY clause.", sc.v.schema+"."+sc.v.name, ev.name)}
			default:
				v, serr := ev.eval(nil)
				if serr != nil {
					return serr
				}
				row[i] = v
			}
		}
		out = append(out, row)
	} else {
		for _, r := range kept {
			row := make(tds.Row, len(evs))
			for i, ev := range evs {
				v, serr := ev.eval(r)
				if serr != nil {
					return serr
				}
				row[i] = v
			}
			out = append(out, row)
		}
		if len(s.order) > 0 {
			if serr := c.orderRows(s, sc, params, cols, kept, out); serr != nil {
				return serr
			}
		}
	}
	if s.top >= 0 && int64(len(out)) > s.top {
		out = out[:s.top]
	}
	c.tok.ColMetadata(cols)
	for _, r := range out {
		if err := c.tok.Row(cols, r); err != nil {
			return &sqlError{8115, 2, 16, "Arithmetic overflow error converting expression to the column's data type."}
		}
	}
	o.done(tds.DoneCount, tds.CmdSelect, uint64(len(out)))
	return nil
}

// orderRows sorts the projected rows by ORDER BY keys: an output column
// ordinal, an output alias, or a column of the source.
func (c *conn) orderRows(s *selectStmt, sc *scope, params map[string]tds.Param, cols tds.ColMetadata, src [][]any, out []tds.Row) *sqlError {
	type key func(i int) any
	var keys []key
	for _, oi := range s.order {
		e := oi.e
		switch {
		case e.kind == eLit:
			n, ok := e.lit.(int64)
			if !ok || n < 1 || int(n) > len(cols) {
				return &sqlError{108, 1, 16, fmt.Sprintf("The ORDER BY position number %s is out of range of the number of items in the select list.", e.text)}
			}
			j := int(n) - 1
			keys = append(keys, func(i int) any { return out[i][j] })
		case e.kind == eCol && e.qual == "" && outputIndex(cols, e.name) >= 0:
			j := outputIndex(cols, e.name)
			keys = append(keys, func(i int) any { return out[i][j] })
		default:
			ev, serr := c.compileExpr(e, sc, params)
			if serr != nil {
				return serr
			}
			keys = append(keys, func(i int) any { v, _ := ev.eval(src[i]); return v })
		}
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	var serr *sqlError
	sort.SliceStable(idx, func(a, b int) bool {
		for k, key := range keys {
			cmp, _, err := compare(key(idx[a]), key(idx[b]))
			if err != nil && serr == nil {
				serr = err
			}
			if cmp != 0 {
				if s.order[k].desc {
					return cmp > 0
				}
				return cmp < 0
			}
		}
		return false
	})
	if serr != nil {
		return serr
	}
	sorted := make([]tds.Row, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	copy(out, sorted)
	return nil
}

func outputIndex(cols tds.ColMetadata, name string) int {
	for i, cl := range cols {
		if strings.EqualFold(cl.Name, name) {
			return i
		}
	}
	return -1
}

func (c *conn) compilePred(p pred, sc *scope, params map[string]tds.Param) (func(row []any) (bool, *sqlError), *sqlError) {
	l, serr := c.compileExpr(p.l, sc, params)
	if serr != nil {
		return nil, serr
	}
	if l.agg {
		return nil, &sqlError{147, 1, 15, "An aggregate may not appear in the WHERE clause unless it is in a subquery contained in a HAVING clause or a select list, and the column being aggregated is an outer reference."}
	}
	switch p.op {
	case "IS NULL", "IS NOT NULL":
		want := p.op == "IS NULL"
		return func(row []any) (bool, *sqlError) {
			v, serr := l.eval(row)
			return (v == nil) == want, serr
		}, nil
	}
	r, serr := c.compileExpr(p.r, sc, params)
	if serr != nil {
		return nil, serr
	}
	if r.agg {
		return nil, &sqlError{147, 1, 15, "An aggregate may not appear in the WHERE clause unless it is in a subquery contained in a HAVING clause or a select list, and the column being aggregated is an outer reference."}
	}
	return func(row []any) (bool, *sqlError) {
		a, serr := l.eval(row)
		if serr != nil {
			return false, serr
		}
		b, serr := r.eval(row)
		if serr != nil {
			return false, serr
		}
		cmp, null, serr := compare(a, b)
		if serr != nil || null {
			return false, serr // NULL compares unknown: the row is filtered out
		}
		switch p.op {
		case "=":
			return cmp == 0, nil
		case "<>", "!=":
			return cmp != 0, nil
		case "<":
			return cmp < 0, nil
		case ">":
			return cmp > 0, nil
		case "<=":
			return cmp <= 0, nil
		}
		return cmp >= 0, nil
	}, nil
}

// compare orders two values with T-SQL's implicit conversions for the
// lab's types: numbers numerically, strings case-insensitively (the
// CI_AS collation, trailing blanks ignored), a string against a number by
// converting the string (error 245 when it is not one).
func compare(a, b any) (int, bool, *sqlError) {
	if a == nil || b == nil {
		return 0, true, nil
	}
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			return strings.Compare(strings.ToLower(strings.TrimRight(as, " ")), strings.ToLower(strings.TrimRight(bs, " "))), false, nil
		}
	}
	na, aok := number(a)
	nb, bok := number(b)
	switch {
	case aok && bok:
		return na.Cmp(nb), false, nil
	case aok:
		if s, ok := b.(string); ok {
			return 0, false, &sqlError{245, 1, 16, fmt.Sprintf("Conversion failed when converting the nvarchar value '%s' to data type int.", s)}
		}
	case bok:
		if s, ok := a.(string); ok {
			return 0, false, &sqlError{245, 1, 16, fmt.Sprintf("Conversion failed when converting the nvarchar value '%s' to data type int.", s)}
		}
	}
	if ta, ok := a.(time.Time); ok {
		if tb, ok := b.(time.Time); ok {
			return ta.Compare(tb), false, nil
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)), false, nil
}

func number(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	case bool:
		if x {
			return big.NewRat(1, 1), true
		}
		return new(big.Rat), true
	case tds.Decimal:
		r, ok := new(big.Rat).SetString(string(x))
		return r, ok
	}
	return nil, false
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
