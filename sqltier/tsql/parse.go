package tsql

import (
	"fmt"
	"strconv"
	"strings"
)

// sqlError is an error SQL Server would raise for a statement.
type Error struct {
	Number int32
	State  uint8
	Class  uint8
	Text   string
}

func (e *Error) Error() string { return fmt.Sprintf("Msg %d: %s", e.Number, e.Text) }

func errSyntaxNear(t token, prev token) *Error {
	if t.kind == tkEOF {
		// SQL Server names the last token of the batch.
		t = prev
	}
	if t.isKeyword() {
		return &Error{156, 1, 15, fmt.Sprintf("Incorrect syntax near the keyword '%s'.", t.val)}
	}
	return &Error{102, 1, 15, fmt.Sprintf("Incorrect syntax near '%s'.", t.text)}
}

func errNotSupported(what string) *Error {
	return &Error{40517, 1, 16, fmt.Sprintf("Keyword or statement option '%s' is not supported in this version of SQL Server.", what)}
}

// Statements of the lab's subset.
type (
	selectStmt struct {
		top   int64 // -1: no TOP
		items []selItem
		from  *objName
		alias string
		where []pred
		order []orderItem
	}
	selItem struct {
		star     bool
		starQual string
		e        *expr
		alias    string
	}
	objName struct {
		parts []string // [db.][schema.]name
		text  string   // as written, for 208
	}
	pred struct {
		l, r    *expr
		op      string // = <> != < > <= >=, or "IS NULL" / "IS NOT NULL"
		opToken token
	}
	orderItem struct {
		e    *expr
		desc bool
	}
	setStmt     struct{ option string }
	useStmt     struct{ db string }
	waitforStmt struct{ delay *expr }
	dmlStmt     struct {
		verb string // INSERT, UPDATE, DELETE
		obj  objName
	}
	execStmt struct{ proc string }
)

type exprKind int

const (
	eLit exprKind = iota
	eCol
	eFunc
	eVar
	eSysVar
)

type expr struct {
	kind  exprKind
	text  string // as written
	lit   any    // eLit: int64, string, Decimal-like string for decimals, nil
	nchar bool   // eLit string was N'...'
	qual  string // eCol: qualifier
	name  string // eCol: column; eFunc: upper-case function; eVar/eSysVar: name with @
	star  bool   // COUNT(*)
	args  []*expr
}

// setOptions are the SET options the server accepts (and ignores: the lab
// has no behaviour they would change). Clients send several at connect time.
var setOptions = map[string]bool{}

func init() {
	for _, o := range strings.Fields(`ANSI_DEFAULTS ANSI_NULL_DFLT_OFF ANSI_NULL_DFLT_ON ANSI_NULLS ANSI_PADDING
		ANSI_WARNINGS ARITHABORT ARITHIGNORE CONCAT_NULL_YIELDS_NULL CONTEXT_INFO CURSOR_CLOSE_ON_COMMIT
		DATEFIRST DATEFORMAT DEADLOCK_PRIORITY FMTONLY FORCEPLAN IMPLICIT_TRANSACTIONS LANGUAGE LOCK_TIMEOUT
		NOCOUNT NOEXEC NUMERIC_ROUNDABORT PARSEONLY QUERY_GOVERNOR_COST_LIMIT QUOTED_IDENTIFIER REMOTE_PROC_TRANSACTIONS
		ROWCOUNT SHOWPLAN_ALL SHOWPLAN_TEXT SHOWPLAN_XML STATISTICS TEXTSIZE TRANSACTION XACT_ABORT`) {
		setOptions[o] = true
	}
}

// unsupported are T-SQL keywords the lab recognises but does not implement.
var unsupported = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`ALTER BACKUP BEGIN BREAK CHECKPOINT CLOSE COMMIT CONTINUE CREATE DBCC DEALLOCATE
		DECLARE DENY DISABLE DROP ENABLE END FETCH GOTO GRANT IF KILL MERGE OPEN PRINT RAISERROR READTEXT
		RECONFIGURE RESTORE RETURN REVERT REVOKE ROLLBACK SAVE SETUSER SHUTDOWN THROW TRUNCATE UPDATETEXT WHILE
		WITH WRITETEXT BULK RESTORE`) {
		unsupported[k] = true
	}
}

// selectTail are keywords that may continue a SELECT in T-SQL but are outside
// the lab's subset.
var selectTail = map[string]bool{"JOIN": true, "INNER": true, "LEFT": true, "RIGHT": true, "FULL": true,
	"CROSS": true, "GROUP": true, "HAVING": true, "UNION": true, "EXCEPT": true, "INTERSECT": true, "OR": true,
	"LIKE": true, "IN": true, "BETWEEN": true, "INTO": true, "OPTION": true, "FOR": true, "OFFSET": true,
	"DISTINCT": true, "CASE": true, "EXISTS": true, "NOT": true, "WITH": true}

// statementStart reports a keyword that begins a new statement (T-SQL
// statements need no separator).
func statementStart(t token) bool {
	switch t.upper() {
	case "SELECT", "SET", "USE", "WAITFOR", "INSERT", "UPDATE", "DELETE", "EXEC", "EXECUTE":
		return true
	}
	return unsupported[t.upper()]
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) prev() token {
	if p.i == 0 {
		return p.toks[0]
	}
	return p.toks[p.i-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}
func (p *parser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tkOp && t.val == op
}
func (p *parser) isKw(kw string) bool { return p.peek().upper() == kw }
func (p *parser) syntax() *Error {
	return errSyntaxNear(p.peek(), p.prev())
}

// parseBatch parses a whole batch before anything runs: SQL Server compiles
// the batch first, and a syntax error means no statement executes.
func parseBatch(sql string) ([]any, *Error) {
	toks, lerr := lex(sql)
	if lerr != nil {
		return nil, &Error{lerr.number, 1, 15, lerr.text}
	}
	p := &parser{toks: toks}
	var out []any
	for {
		for p.isOp(";") {
			p.next()
		}
		if p.peek().kind == tkEOF {
			return out, nil
		}
		st, err := p.statement(len(out) == 0)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
}

func (p *parser) statement(first bool) (any, *Error) {
	t := p.peek()
	switch kw := t.upper(); {
	case kw == "SELECT":
		return p.selectStmt()
	case kw == "SET":
		return p.setStmt()
	case kw == "USE":
		p.next()
		n := p.next()
		if n.kind != tkIdent && n.kind != tkQuoted || n.isKeyword() {
			return nil, errSyntaxNear(n, t)
		}
		return &useStmt{db: n.val}, nil
	case kw == "WAITFOR":
		p.next()
		if !p.isKw("DELAY") {
			if p.isKw("TIME") {
				return nil, errNotSupported("WAITFOR TIME")
			}
			return nil, p.syntax()
		}
		p.next()
		e, err := p.primary()
		if err != nil {
			return nil, err
		}
		return &waitforStmt{delay: e}, nil
	case kw == "INSERT" || kw == "UPDATE" || kw == "DELETE":
		p.next()
		if (kw == "INSERT" && p.isKw("INTO")) || (kw == "DELETE" && p.isKw("FROM")) {
			p.next()
		}
		obj, err := p.objName()
		if err != nil {
			return nil, err
		}
		p.skipStatement()
		return &dmlStmt{verb: kw, obj: *obj}, nil
	case kw == "EXEC" || kw == "EXECUTE":
		p.next()
		if p.peek().kind == tkVar {
			p.next()
			if !p.isOp("=") {
				return nil, p.syntax()
			}
			p.next()
		}
		if p.isOp("(") {
			return nil, errNotSupported("EXECUTE (string)")
		}
		obj, err := p.objName()
		if err != nil {
			return nil, err
		}
		p.skipStatement()
		return &execStmt{proc: obj.text}, nil
	case kw == "BEGIN" || kw == "COMMIT" || kw == "ROLLBACK" || kw == "SAVE":
		p.next()
		if p.isKw("TRAN") || p.isKw("TRANSACTION") {
			return nil, errNotSupported(kw + " TRANSACTION")
		}
		return nil, errNotSupported(kw)
	case unsupported[kw]:
		return nil, errNotSupported(kw)
	case first && (t.kind == tkIdent && !t.isKeyword() || t.kind == tkQuoted):
		// A batch that starts with a name executes that procedure.
		obj, err := p.objName()
		if err != nil {
			return nil, err
		}
		p.skipStatement()
		return &execStmt{proc: obj.text}, nil
	}
	return nil, p.syntax()
}

// skipStatement consumes arguments of a statement the lab refuses anyway.
func (p *parser) skipStatement() {
	for {
		t := p.peek()
		if t.kind == tkEOF || t.kind == tkOp && t.val == ";" {
			return
		}
		p.next()
	}
}

func (p *parser) setStmt() (any, *Error) {
	setTok := p.next()
	t := p.next()
	if t.kind == tkVar {
		return nil, &Error{137, 1, 15, fmt.Sprintf("Must declare the scalar variable \"%s\".", t.val)}
	}
	opt := t.upper()
	if !setOptions[opt] {
		return nil, errSyntaxNear(t, setTok)
	}
	// Option arguments: ON/OFF, a number, a name, a comma-separated option list.
	for {
		n := p.peek()
		if n.kind == tkEOF || n.kind == tkOp && n.val == ";" || statementStart(n) {
			break
		}
		p.next()
	}
	return &setStmt{option: opt}, nil
}

func (p *parser) objName() (*objName, *Error) {
	var parts []string
	for {
		t := p.peek()
		if t.kind != tkIdent && t.kind != tkQuoted || t.kind == tkIdent && t.isKeyword() {
			if len(parts) > 0 && p.prev().kind == tkOp { // "dbo." then nothing
				return nil, p.syntax()
			}
			if len(parts) == 0 {
				return nil, p.syntax()
			}
			break
		}
		p.next()
		parts = append(parts, t.val)
		if !p.isOp(".") || len(parts) == 4 {
			break
		}
		p.next()
		// db..name: the schema left out between two dots means dbo.
		for p.isOp(".") && len(parts) < 3 {
			p.next()
			parts = append(parts, "")
		}
	}
	return &objName{parts: parts, text: strings.Join(parts, ".")}, nil
}

func (p *parser) selectStmt() (any, *Error) {
	p.next()
	s := &selectStmt{top: -1}
	if p.isKw("DISTINCT") {
		return nil, errNotSupported("DISTINCT")
	}
	if p.isKw("ALL") {
		p.next()
	}
	if p.isKw("TOP") {
		p.next()
		paren := p.isOp("(")
		if paren {
			p.next()
		}
		n := p.next()
		v, err := strconv.ParseInt(n.val, 10, 64)
		if n.kind != tkNumber || err != nil || v < 0 {
			return nil, errSyntaxNear(n, p.prev())
		}
		if paren {
			if !p.isOp(")") {
				return nil, p.syntax()
			}
			p.next()
		}
		if p.isKw("PERCENT") || p.isKw("WITH") {
			return nil, errNotSupported("TOP " + p.peek().upper())
		}
		s.top = v
	}
	for {
		it, err := p.selItem()
		if err != nil {
			return nil, err
		}
		s.items = append(s.items, it)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if p.isKw("INTO") {
		return nil, errNotSupported("SELECT INTO")
	}
	if p.isKw("FROM") {
		p.next()
		obj, err := p.objName()
		if err != nil {
			return nil, err
		}
		s.from = obj
		if p.isKw("AS") {
			p.next()
		}
		if t := p.peek(); (t.kind == tkIdent && !t.isKeyword() && !selectTail[t.upper()]) || t.kind == tkQuoted {
			s.alias = p.next().val
		}
		if p.isKw("WITH") {
			return nil, errNotSupported("WITH (table hints)")
		}
	}
	if p.isKw("WHERE") {
		p.next()
		for {
			pr, err := p.pred()
			if err != nil {
				return nil, err
			}
			s.where = append(s.where, pr)
			if !p.isKw("AND") {
				break
			}
			p.next()
		}
	}
	if p.isKw("ORDER") {
		p.next()
		if !p.isKw("BY") {
			return nil, p.syntax()
		}
		p.next()
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			oi := orderItem{e: e}
			if p.isKw("ASC") {
				p.next()
			} else if p.isKw("DESC") {
				p.next()
				oi.desc = true
			}
			s.order = append(s.order, oi)
			if !p.isOp(",") {
				break
			}
			p.next()
		}
	}
	return s, p.endOfStatement()
}

// endOfStatement accepts ';', the end of the batch or the next statement.
func (p *parser) endOfStatement() *Error {
	t := p.peek()
	if t.kind == tkEOF || t.kind == tkOp && t.val == ";" || statementStart(t) {
		return nil
	}
	if u := t.upper(); selectTail[u] || u == "GROUP" || u == "ORDER" {
		return errNotSupported(u)
	}
	if t.kind == tkOp && strings.Contains("+-*/%&|^", t.val) {
		return errNotSupported("operator " + t.val)
	}
	return p.syntax()
}

func (p *parser) selItem() (selItem, *Error) {
	if p.isOp("*") {
		p.next()
		return selItem{star: true}, nil
	}
	// qualifier.*
	if t := p.peek(); (t.kind == tkIdent && !t.isKeyword() || t.kind == tkQuoted) && p.toks[p.i+1].kind == tkOp && p.toks[p.i+1].val == "." &&
		p.toks[p.i+2].kind == tkOp && p.toks[p.i+2].val == "*" {
		p.i += 3
		return selItem{star: true, starQual: t.val}, nil
	}
	// alias = expr
	if t := p.peek(); (t.kind == tkIdent && !t.isKeyword() || t.kind == tkQuoted) && p.toks[p.i+1].kind == tkOp && p.toks[p.i+1].val == "=" {
		p.i += 2
		e, err := p.expr()
		if err != nil {
			return selItem{}, err
		}
		return selItem{e: e, alias: t.val}, nil
	}
	e, err := p.expr()
	if err != nil {
		return selItem{}, err
	}
	it := selItem{e: e}
	if p.isKw("AS") {
		p.next()
		a := p.next()
		if a.kind != tkIdent && a.kind != tkQuoted && a.kind != tkString || a.isKeyword() {
			return selItem{}, errSyntaxNear(a, p.prev())
		}
		it.alias = a.val
	} else if t := p.peek(); (t.kind == tkIdent && !t.isKeyword() && !selectTail[t.upper()]) || t.kind == tkQuoted || t.kind == tkString {
		it.alias = p.next().val
	}
	return it, nil
}

func (p *parser) pred() (pred, *Error) {
	if p.isKw("NOT") || p.isOp("(") {
		return pred{}, errNotSupported(p.peek().text)
	}
	l, err := p.expr()
	if err != nil {
		return pred{}, err
	}
	if p.isKw("IS") {
		p.next()
		op := "IS NULL"
		if p.isKw("NOT") {
			p.next()
			op = "IS NOT NULL"
		}
		if !p.isKw("NULL") {
			return pred{}, p.syntax()
		}
		p.next()
		return pred{l: l, op: op}, nil
	}
	t := p.peek()
	if t.kind != tkOp {
		if selectTail[t.upper()] {
			return pred{}, errNotSupported(t.upper())
		}
		return pred{}, p.syntax()
	}
	switch t.val {
	case "=", "<>", "!=", "<", ">", "<=", ">=":
	default:
		return pred{}, p.syntax()
	}
	p.next()
	r, err := p.expr()
	if err != nil {
		return pred{}, err
	}
	return pred{l: l, r: r, op: t.val, opToken: t}, nil
}

func (p *parser) expr() (*expr, *Error) {
	e, err := p.primary()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tkOp && strings.Contains("+-*/%&|^", t.val) && t.val != "" {
		return nil, errNotSupported("operator " + t.val)
	}
	return e, nil
}

func (p *parser) primary() (*expr, *Error) {
	t := p.next()
	switch t.kind {
	case tkNumber:
		return numberLit(t)
	case tkString, tkNString:
		return &expr{kind: eLit, text: t.text, lit: t.val, nchar: t.kind == tkNString}, nil
	case tkVar:
		return &expr{kind: eVar, text: t.text, name: t.val}, nil
	case tkSysVar:
		return &expr{kind: eSysVar, text: t.text, name: strings.ToUpper(t.val)}, nil
	case tkOp:
		switch t.val {
		case "-", "+":
			n := p.next()
			if n.kind != tkNumber {
				return nil, errSyntaxNear(n, t)
			}
			e, err := numberLit(n)
			if err != nil {
				return nil, err
			}
			if t.val == "-" {
				switch v := e.lit.(type) {
				case int64:
					e.lit = -v
				case decimalLit:
					e.lit = decimalLit{"-" + v.s, v.scale}
				}
			}
			e.text = t.text + n.text
			return e, nil
		case "(":
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if !p.isOp(")") {
				return nil, p.syntax()
			}
			p.next()
			return e, nil
		}
		return nil, errSyntaxNear(t, p.prev())
	case tkIdent, tkQuoted:
		u := t.upper()
		switch u {
		case "NULL":
			return &expr{kind: eLit, text: t.text, lit: nil}, nil
		case "SYSTEM_USER", "CURRENT_USER", "SESSION_USER", "USER":
			return &expr{kind: eFunc, text: t.text, name: u}, nil
		}
		if t.kind == tkIdent && p.isOp("(") {
			if t.isKeyword() && u != "LEFT" && u != "RIGHT" {
				return nil, errSyntaxNear(t, p.prev())
			}
			p.next()
			e := &expr{kind: eFunc, text: t.text, name: u}
			if p.isOp("*") {
				p.next()
				e.star = true
			} else if !p.isOp(")") {
				for {
					a, err := p.expr()
					if err != nil {
						return nil, err
					}
					e.args = append(e.args, a)
					if !p.isOp(",") {
						break
					}
					p.next()
				}
			}
			if !p.isOp(")") {
				return nil, p.syntax()
			}
			p.next()
			e.text += "()"
			return e, nil
		}
		if t.isKeyword() {
			return nil, errSyntaxNear(t, p.prev())
		}
		e := &expr{kind: eCol, text: t.text, name: t.val}
		for p.isOp(".") {
			p.next()
			n := p.next()
			if n.kind != tkIdent && n.kind != tkQuoted {
				return nil, errSyntaxNear(n, p.prev())
			}
			if e.qual != "" {
				e.qual += "."
			}
			e.qual += e.name
			e.name = n.val
			e.text += "." + n.text
		}
		return e, nil
	}
	return nil, errSyntaxNear(t, p.prev())
}

// decimalLit is a numeric literal with a fraction: decimal(p,s) in T-SQL.
type decimalLit struct {
	s     string
	scale int
}

func numberLit(t token) (*expr, *Error) {
	if strings.Count(t.val, ".") > 1 {
		return nil, errSyntaxNear(t, t)
	}
	if ip, fp, ok := strings.Cut(t.val, "."); ok {
		if ip == "" {
			ip = "0"
		}
		return &expr{kind: eLit, text: t.text, lit: decimalLit{ip + "." + fp, len(fp)}}, nil
	}
	v, err := strconv.ParseInt(t.val, 10, 64)
	if err != nil {
		return &expr{kind: eLit, text: t.text, lit: decimalLit{t.val, 0}}, nil
	}
	return &expr{kind: eLit, text: t.text, lit: v}, nil
}

// NewError is a SQL Server error with its number, state, class (severity) and text.
func NewError(number int32, state, class uint8, text string) *Error {
	return &Error{Number: number, State: state, Class: class, Text: text}
}
