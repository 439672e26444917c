package tsql

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

func (x *run) execUse(u *useStmt) *Error {
	name, ok := x.s.database(u.db)
	if !ok {
		return &Error{911, 1, 16, fmt.Sprintf("Database '%s' does not exist. Make sure that the name is entered correctly.", u.db)}
	}
	old := x.s.Database
	x.s.Database = name
	x.out.EnvChange(tds.EnvChange{Type: tds.EnvDatabase, New: name, Old: old})
	x.out.Info(5701, 1, fmt.Sprintf("Changed database context to '%s'.", name))
	x.out.Done(0, 0, 0)
	return nil
}

func (x *run) execDML(d *dmlStmt) *Error {
	v, serr := x.resolve(&d.obj)
	if serr != nil {
		return serr
	}
	db := v.DB
	if db == "" {
		db = x.s.Database
	}
	return &Error{229, 5, 14, fmt.Sprintf("The %s permission was denied on the object '%s', database '%s', schema '%s'.", d.verb, v.Name, db, v.Schema)}
}

// execWaitfor sleeps, watching the socket for ATTENTION.
func (x *run) execWaitfor(w *waitforStmt) (*Error, error) {
	ev, serr := x.compileExpr(w.delay, nil)
	if serr != nil {
		return serr, nil
	}
	v, serr := ev.eval(nil)
	if serr != nil {
		return serr, nil
	}
	s, ok := v.(string)
	d, perr := parseDelay(s)
	if !ok || perr != nil || d > MaxWaitfor {
		return &Error{148, 1, 15, "Incorrect time syntax in time string '" + fmt.Sprint(v) + "' used with WAITFOR."}, nil
	}
	if err := x.s.Wait(d); err != nil {
		return nil, err
	}
	x.out.Done(0, 0, 0)
	return nil, nil
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
	eval func(row []any) (any, *Error)
	// count is the aggregate's per-row contribution test (COUNT(expr) skips NULL).
	count  func(row []any) (bool, *Error)
	colIdx int // source column index for column references, -1 otherwise
}

// scope is the FROM object a statement reads.
type scope struct {
	v     *Table
	alias string
}

func (sc *scope) find(e *expr) (int, *Error) {
	if sc == nil || sc.v == nil {
		return -1, &Error{207, 1, 16, fmt.Sprintf("Invalid column name '%s'.", e.name)}
	}
	if e.qual != "" {
		q := strings.ToLower(e.qual)
		ok := q == strings.ToLower(sc.v.Name) || q == strings.ToLower(sc.v.Schema+"."+sc.v.Name) ||
			(sc.alias != "" && q == strings.ToLower(sc.alias)) || strings.HasSuffix(q, "."+strings.ToLower(sc.v.Schema+"."+sc.v.Name))
		if sc.alias != "" && q != strings.ToLower(sc.alias) {
			ok = false // an aliased table is only known by its alias
		}
		if !ok {
			return -1, &Error{4104, 1, 16, fmt.Sprintf("The multi-part identifier \"%s\" could not be bound.", e.text)}
		}
	}
	for i, cl := range sc.v.Columns {
		if strings.EqualFold(cl.Name, e.name) {
			return i, nil
		}
	}
	return -1, &Error{207, 1, 16, fmt.Sprintf("Invalid column name '%s'.", e.name)}
}

// compileExpr types an expression and returns its evaluator.
func (x *run) compileExpr(e *expr, sc *scope) (*evaluator, *Error) {
	constant := func(ti tds.TypeInfo, v any) (*evaluator, *Error) {
		return &evaluator{ti: ti, colIdx: -1, eval: func([]any) (any, *Error) { return v, nil }}, nil
	}
	s := x.s
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
				return nil, &Error{1007, 1, 15, fmt.Sprintf("The number '%s' is out of the range for numeric representation (maximum precision 38).", e.text)}
			}
			return constant(tds.DecimalN(uint8(p), uint8(v.scale)), tds.Decimal(v.s))
		case string:
			return constant(tds.NVarChar(max(tds.UCS2Len(v), 1)), v)
		}
	case eVar:
		p, ok := x.params[strings.ToLower(e.name)]
		if !ok {
			return nil, &Error{137, 2, 15, fmt.Sprintf("Must declare the scalar variable \"%s\".", e.name)}
		}
		ti, v := paramColumn(p)
		return constant(ti, v)
	case eSysVar:
		switch e.name {
		case "@@SPID":
			return constant(tds.IntN(2), int64(s.SPID))
		case "@@VERSION":
			return constant(tds.NVarChar(300), s.Version)
		case "@@SERVERNAME":
			return constant(tds.NVarChar(128), s.ServerName)
		case "@@SERVICENAME":
			return constant(tds.NVarChar(128), "MSSQLSERVER")
		case "@@LANGUAGE":
			return constant(tds.NVarChar(128), "us_english")
		case "@@TRANCOUNT":
			n := int64(0)
			if s.InTransaction {
				n = 1
			}
			return constant(tds.IntN(4), n)
		case "@@MAX_PRECISION":
			return constant(tds.IntN(1), int64(38))
		}
		return nil, &Error{137, 2, 15, fmt.Sprintf("Must declare the scalar variable \"%s\".", e.text)}
	case eFunc:
		name128 := func(v string) (*evaluator, *Error) {
			if len(e.args) > 0 || e.star {
				return nil, &Error{174, 1, 15, fmt.Sprintf("The %s function takes 0 arguments.", strings.ToLower(e.name))}
			}
			return constant(tds.NVarChar(128), v)
		}
		switch e.name {
		case "SUSER_SNAME", "SUSER_NAME", "ORIGINAL_LOGIN", "SYSTEM_USER":
			return name128(s.Login)
		case "USER_NAME", "CURRENT_USER", "SESSION_USER", "USER":
			return name128(s.Login) // the database user of a Windows login carries its name
		case "DB_NAME":
			return name128(s.Database)
		case "HOST_NAME":
			return name128(s.Host)
		case "APP_NAME":
			return name128(s.App)
		case "GETDATE", "GETUTCDATE", "SYSDATETIME", "CURRENT_TIMESTAMP":
			now := s.now()
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
				return &evaluator{ti: tds.IntN(4), agg: true, colIdx: -1, count: func([]any) (bool, *Error) { return true, nil }}, nil
			}
			if len(e.args) != 1 {
				return nil, &Error{174, 1, 15, "The count function requires 1 argument(s)."}
			}
			inner, serr := x.compileExpr(e.args[0], sc)
			if serr != nil {
				return nil, serr
			}
			return &evaluator{ti: tds.IntN(4), agg: true, colIdx: -1, count: func(row []any) (bool, *Error) {
				v, serr := inner.eval(row)
				return v != nil, serr
			}}, nil
		case "SUM", "MIN", "MAX", "AVG", "STRING_AGG", "SERVERPROPERTY", "CAST", "CONVERT", "ISNULL", "COALESCE":
			return nil, errNotSupported(e.name)
		}
		return nil, &Error{195, 10, 15, fmt.Sprintf("'%s' is not a recognized built-in function name.", strings.TrimSuffix(e.text, "()"))}
	case eCol:
		i, serr := sc.find(e)
		if serr != nil {
			return nil, serr
		}
		return &evaluator{ti: sc.v.Columns[i].Type, name: sc.v.Columns[i].Name, colIdx: i,
			eval: func(row []any) (any, *Error) { return row[i], nil }}, nil
	}
	return nil, &Error{102, 1, 15, fmt.Sprintf("Incorrect syntax near '%s'.", e.text)}
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

func (x *run) execSelect(s *selectStmt) *Error {
	var sc *scope
	if s.from != nil {
		v, serr := x.resolve(s.from)
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
				return &Error{263, 1, 16, "Must specify table to select from."}
			}
			if it.starQual != "" && !strings.EqualFold(it.starQual, sc.v.Name) && !strings.EqualFold(it.starQual, sc.alias) {
				return &Error{107, 1, 15, fmt.Sprintf("The column prefix '%s' does not match with a table name or alias name used in the query.", it.starQual)}
			}
			for i, cl := range sc.v.Columns {
				i := i
				evs = append(evs, &evaluator{ti: cl.Type, name: cl.Name, colIdx: i, eval: func(row []any) (any, *Error) { return row[i], nil }})
				cols = append(cols, cl)
			}
			continue
		}
		ev, serr := x.compileExpr(it.e, sc)
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
			flags = sc.v.Columns[ev.colIdx].Flags
		}
		cols = append(cols, tds.Column{Name: name, Type: ev.ti, Flags: flags})
	}
	var where []func(row []any) (bool, *Error)
	for _, p := range s.where {
		f, serr := x.compilePred(p, sc)
		if serr != nil {
			return serr
		}
		where = append(where, f)
	}
	src := [][]any{nil}
	if sc != nil {
		src = sc.v.Rows()
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
				return &Error{8120, 1, 16, fmt.Sprintf("Column '%s.%s' is invalid in the select list because it is not contained in either an aggregate function or the GROUP BY clause.", sc.v.Schema+"."+sc.v.Name, ev.name)}
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
			if serr := x.orderRows(s, sc, cols, kept, out); serr != nil {
				return serr
			}
		}
	}
	if s.top >= 0 && int64(len(out)) > s.top {
		out = out[:s.top]
	}
	if err := x.out.Rows(cols, out); err != nil {
		return &Error{8115, 2, 16, "Arithmetic overflow error converting expression to the column's data type."}
	}
	x.out.Done(tds.DoneCount, tds.CmdSelect, uint64(len(out)))
	return nil
}

// orderRows sorts the projected rows by ORDER BY keys: an output column
// ordinal, an output alias, or a column of the source.
func (x *run) orderRows(s *selectStmt, sc *scope, cols tds.ColMetadata, src [][]any, out []tds.Row) *Error {
	type key func(i int) any
	var keys []key
	for _, oi := range s.order {
		e := oi.e
		switch {
		case e.kind == eLit:
			n, ok := e.lit.(int64)
			if !ok || n < 1 || int(n) > len(cols) {
				return &Error{108, 1, 16, fmt.Sprintf("The ORDER BY position number %s is out of range of the number of items in the select list.", e.text)}
			}
			j := int(n) - 1
			keys = append(keys, func(i int) any { return out[i][j] })
		case e.kind == eCol && e.qual == "" && outputIndex(cols, e.name) >= 0:
			j := outputIndex(cols, e.name)
			keys = append(keys, func(i int) any { return out[i][j] })
		default:
			ev, serr := x.compileExpr(e, sc)
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
	var serr *Error
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

func (x *run) compilePred(p pred, sc *scope) (func(row []any) (bool, *Error), *Error) {
	l, serr := x.compileExpr(p.l, sc)
	if serr != nil {
		return nil, serr
	}
	if l.agg {
		return nil, &Error{147, 1, 15, "An aggregate may not appear in the WHERE clause unless it is in a subquery contained in a HAVING clause or a select list, and the column being aggregated is an outer reference."}
	}
	switch p.op {
	case "IS NULL", "IS NOT NULL":
		want := p.op == "IS NULL"
		return func(row []any) (bool, *Error) {
			v, serr := l.eval(row)
			return (v == nil) == want, serr
		}, nil
	}
	r, serr := x.compileExpr(p.r, sc)
	if serr != nil {
		return nil, serr
	}
	if r.agg {
		return nil, &Error{147, 1, 15, "An aggregate may not appear in the WHERE clause unless it is in a subquery contained in a HAVING clause or a select list, and the column being aggregated is an outer reference."}
	}
	return func(row []any) (bool, *Error) {
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
func compare(a, b any) (int, bool, *Error) {
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
			return 0, false, &Error{245, 1, 16, fmt.Sprintf("Conversion failed when converting the nvarchar value '%s' to data type int.", s)}
		}
	case bok:
		if s, ok := a.(string); ok {
			return 0, false, &Error{245, 1, 16, fmt.Sprintf("Conversion failed when converting the nvarchar value '%s' to data type int.", s)}
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
