package tsql

import (
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/sqltier/tds"
)

// MaxWaitfor bounds WAITFOR DELAY (a lab convenience to exercise ATTENTION).
const MaxWaitfor = 5 * time.Minute

// Table is an object a statement can read: a view computed for the asking
// session.
type Table struct {
	DB      string // "" = present in every database (sys)
	Schema  string
	Name    string
	Columns []tds.Column
	Rows    func() [][]any
}

// Session is what a batch sees of its connection and server.
type Session struct {
	Login, Host, App string
	SPID             int
	InTransaction    bool
	ServerName       string
	Version          string
	Database         string // the current database; USE changes it
	Now              func() time.Time
	// Databases gives a database's name as the server spells it.
	Databases func(name string) (string, bool)
	Tables    []*Table
	// Wait sleeps for WAITFOR DELAY; it returns early with the reason (the
	// client's ATTENTION, a broken connection).
	Wait func(d time.Duration) error
}

func (s *Session) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Session) database(name string) (string, bool) {
	if s.Databases == nil {
		return "", false
	}
	return s.Databases(name)
}

// Output receives a batch's results, in order; package sqltier writes them
// as TDS tokens (MS-TDS 2.2.7).
type Output interface {
	Rows(cols tds.ColMetadata, rows []tds.Row) error // a result set; an error is a value that does not fit its column
	Done(status, cmd uint16, rows uint64)            // one statement done
	Info(number int32, state uint8, text string)     // an informational message
	EnvChange(e tds.EnvChange)                       // e.g. the database after USE
}

// Run parses the whole batch (a syntax error runs nothing), then runs its
// statements with params (sp_executesql's); the first SQL error aborts the
// rest, as a compile error does on SQL Server, and is returned. err is not
// SQL: ATTENTION or the connection, from Session.Wait.
func Run(sql string, s *Session, params map[string]tds.Param, out Output) (serr *Error, err error) {
	stmts, perr := parseBatch(sql)
	if perr != nil {
		return perr, nil
	}
	x := &run{s: s, out: out, params: params}
	for _, st := range stmts {
		switch st := st.(type) {
		case *selectStmt:
			serr = x.execSelect(st)
		case *setStmt:
			out.Done(0, 0, 0)
		case *useStmt:
			serr = x.execUse(st)
		case *waitforStmt:
			serr, err = x.execWaitfor(st)
		case *dmlStmt:
			serr = x.execDML(st)
		case *execStmt:
			serr = &Error{2812, 62, 16, fmt.Sprintf("Could not find stored procedure '%s'.", st.proc)}
		}
		if err != nil || serr != nil {
			return serr, err
		}
	}
	return nil, nil
}

// run is one batch being executed.
type run struct {
	s      *Session
	out    Output
	params map[string]tds.Param
}

// resolve finds an object as SQL Server's name resolution would for the
// lab: [database.][schema.]name, schema dbo when omitted, in the current
// database unless named. Four-part names go to a linked server, which the
// lab does not have.
func (x *run) resolve(o *objName) (*Table, *Error) {
	parts := o.parts
	if len(parts) == 4 {
		return nil, &Error{7202, 2, 11, fmt.Sprintf("Could not find server '%s' in sys.servers. Verify that the correct server name was specified. If necessary, execute the stored procedure sp_addlinkedserver to add the server to sys.servers.", parts[0])}
	}
	db, schema, name := x.s.Database, "dbo", parts[len(parts)-1]
	if len(parts) >= 2 && parts[len(parts)-2] != "" {
		schema = parts[len(parts)-2]
	}
	if len(parts) == 3 {
		d, ok := x.s.database(parts[0])
		if !ok {
			return nil, errInvalidObject(o.text)
		}
		db = d
	}
	for _, v := range x.s.Tables {
		if (v.DB == "" || strings.EqualFold(v.DB, db)) && strings.EqualFold(v.Schema, schema) && strings.EqualFold(v.Name, name) {
			return v, nil
		}
	}
	return nil, errInvalidObject(o.text)
}

func errInvalidObject(name string) *Error {
	return &Error{208, 1, 16, fmt.Sprintf("Invalid object name '%s'.", name)}
}
