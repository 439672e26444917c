package tsql

import (
	"strings"
)

type tokKind int

const (
	tkEOF tokKind = iota
	tkIdent
	tkQuoted // [name] or "name"
	tkNumber
	tkString  // 'text'
	tkNString // N'text'
	tkVar     // @name
	tkSysVar  // @@name
	tkOp      // punctuation and operators
)

type token struct {
	kind tokKind
	text string // as written (for error messages)
	val  string // identifier / string value / operator
	pos  int
}

// upper is the keyword form of an identifier token ("" for others).
func (t token) upper() string {
	if t.kind != tkIdent {
		return ""
	}
	return strings.ToUpper(t.val)
}

// reserved holds the T-SQL reserved keywords the parser may meet; they are
// what turns error 102 into 156 ("near the keyword").
var reserved = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`ADD ALL ALTER AND ANY AS ASC BACKUP BEGIN BETWEEN BREAK BY CASE CHECK
		CLOSE COLUMN COMMIT CONSTRAINT CONTINUE CREATE CROSS CURRENT_USER CURSOR DATABASE DECLARE DEFAULT
		DELETE DENY DESC DISTINCT DROP ELSE END EXCEPT EXEC EXECUTE EXISTS FETCH FOR FROM FULL FUNCTION GOTO
		GRANT GROUP HAVING IF IN INNER INSERT INTERSECT INTO IS JOIN KILL LEFT LIKE MERGE NOT NULL OF ON OPEN
		OPTION OR ORDER OUTER PRINT PROC PROCEDURE RETURN REVOKE RIGHT ROLLBACK SAVE SELECT SESSION_USER SET
		SHUTDOWN SYSTEM_USER TABLE TOP TRAN TRANSACTION TRUNCATE UNION UPDATE USE USER VALUES VIEW WAITFOR WHEN
		WHERE WHILE WITH`) {
		reserved[k] = true
	}
}

func (t token) isKeyword() bool { return t.kind == tkIdent && reserved[t.upper()] }

// lexError is an unterminated string, comment or quoted name: SQL Server's
// 105 "Unclosed quotation mark after the character string '%.*ls'." or 102.
type lexError struct {
	number int32
	text   string
}

// quoted reads a 'string', [identifier] or "identifier" body from i (just past
// the opener) to closeCh, where a doubled closeCh stands for one; end is just
// past the closer. Unclosed is error 105, as SQL Server says it.
func quoted(sql string, i int, closeCh byte) (val string, end int, err *lexError) {
	var b strings.Builder
	for i < len(sql) {
		if sql[i] == closeCh {
			if i+1 < len(sql) && sql[i+1] == closeCh {
				b.WriteByte(closeCh)
				i += 2
				continue
			}
			return b.String(), i + 1, nil
		}
		b.WriteByte(sql[i])
		i++
	}
	return "", i, &lexError{105, "Unclosed quotation mark after the character string '" + b.String() + "'."}
}

func lex(sql string) ([]token, *lexError) {
	var out []token
	i := 0
	n := len(sql)
	for i < n {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			depth, j := 1, i+2 // T-SQL block comments nest
			for j < n && depth > 0 {
				switch {
				case j+1 < n && sql[j] == '/' && sql[j+1] == '*':
					depth++
					j += 2
				case j+1 < n && sql[j] == '*' && sql[j+1] == '/':
					depth--
					j += 2
				default:
					j++
				}
			}
			if depth > 0 {
				return nil, &lexError{113, "Missing end comment mark '*/'."}
			}
			i = j
		case c == '\'' || ((c == 'N' || c == 'n') && i+1 < n && sql[i+1] == '\''):
			start := i
			kind := tkString
			if c != '\'' {
				kind = tkNString
				i++
			}
			val, end, err := quoted(sql, i+1, '\'')
			if err != nil {
				return nil, err
			}
			i = end
			out = append(out, token{kind: kind, text: sql[start:i], val: val, pos: start})
		case c == '[' || c == '"':
			closeCh := byte(']')
			if c == '"' {
				closeCh = '"'
			}
			start := i
			val, end, err := quoted(sql, i+1, closeCh)
			if err != nil {
				return nil, err
			}
			i = end
			out = append(out, token{kind: tkQuoted, text: sql[start:i], val: val, pos: start})
		case c >= '0' && c <= '9' || c == '.' && i+1 < n && sql[i+1] >= '0' && sql[i+1] <= '9':
			start := i
			for i < n && (sql[i] >= '0' && sql[i] <= '9' || sql[i] == '.') {
				i++
			}
			out = append(out, token{kind: tkNumber, text: sql[start:i], val: sql[start:i], pos: start})
		case c == '@':
			start := i
			kind := tkVar
			i++
			if i < n && sql[i] == '@' {
				kind = tkSysVar
				i++
			}
			for i < n && isIdentChar(sql[i]) {
				i++
			}
			out = append(out, token{kind: kind, text: sql[start:i], val: sql[start:i], pos: start})
		case isIdentStart(c):
			start := i
			for i < n && isIdentChar(sql[i]) {
				i++
			}
			out = append(out, token{kind: tkIdent, text: sql[start:i], val: sql[start:i], pos: start})
		default:
			start := i
			op := string(c)
			if i+1 < n {
				switch two := sql[i : i+2]; two {
				case "<>", "!=", "<=", ">=":
					op = two
				}
			}
			i += len(op)
			out = append(out, token{kind: tkOp, text: op, val: op, pos: start})
		}
	}
	out = append(out, token{kind: tkEOF, pos: n})
	return out, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '#' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' || c == '@'
}
