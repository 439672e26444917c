package tsql

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/sqltier/tds"
)

// record is an Output that keeps what the engine wrote.
type record struct {
	sets  [][]tds.Row
	cols  []tds.ColMetadata
	dones []uint64
	infos []string
	envs  []tds.EnvChange
}

func (r *record) Rows(cols tds.ColMetadata, rows []tds.Row) error {
	r.cols, r.sets = append(r.cols, cols), append(r.sets, rows)
	return nil
}
func (r *record) Done(status, cmd uint16, rows uint64)        { r.dones = append(r.dones, rows) }
func (r *record) Info(number int32, state uint8, text string) { r.infos = append(r.infos, text) }
func (r *record) EnvChange(e tds.EnvChange)                   { r.envs = append(r.envs, e) }

func session() *Session {
	orders := &Table{DB: "labdb", Schema: "dbo", Name: "orders",
		Columns: []tds.Column{{Name: "id", Type: tds.IntN(4)}, {Name: "customer", Type: tds.NVarChar(128)}, {Name: "item", Type: tds.NVarChar(100)}},
		Rows: func() [][]any {
			return [][]any{{int64(2), `LAB\bob`, "keyboard"}, {int64(1), `LAB\bob`, "monitor"}, {int64(3), `LAB\alice`, "mouse"}}
		}}
	return &Session{Login: `LAB\bob`, Host: "WEB", App: "test", SPID: 51, ServerName: "SQL", Version: "v", Database: "master",
		Now: func() time.Time { return time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) },
		Databases: func(n string) (string, bool) {
			return map[string]string{"master": "master", "labdb": "labdb"}[strings.ToLower(n)], strings.EqualFold(n, "master") || strings.EqualFold(n, "labdb")
		},
		Tables: []*Table{orders},
		Wait:   func(time.Duration) error { return nil },
	}
}

func TestRunResults(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want string // rows as fmt prints them
	}{
		{"SELECT SUSER_SNAME()", `[[LAB\bob]]`},
		{"SELECT @@SPID, DB_NAME()", `[[51 master]]`},
		{"USE labdb; SELECT item FROM orders WHERE customer = 'lab\\BOB' ORDER BY id", `[[monitor] [keyboard]]`},
		{"SELECT TOP 1 id FROM labdb.dbo.orders ORDER BY id DESC", `[[3]]`},
		{"SELECT COUNT(*) FROM labdb..orders", `[[3]]`},
		{"SELECT o.item FROM labdb.dbo.orders o WHERE o.id = @id", `[[mouse]]`},
	} {
		r := &record{}
		serr, err := Run(tc.sql, session(), map[string]tds.Param{"@id": {Name: "@id", Value: int64(3)}}, r)
		if serr != nil || err != nil {
			t.Fatalf("%s: %v %v", tc.sql, serr, err)
		}
		if got := fmt.Sprint(r.sets[len(r.sets)-1]); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.sql, got, tc.want)
		}
	}
}

func TestRunErrorsAsSQLServer(t *testing.T) {
	for _, tc := range []struct {
		sql    string
		number int32
		text   string
	}{
		{"SELEC 1", 2812, "Could not find stored procedure 'SELEC'."}, // a batch's first word is a procedure name, as SQL Server reads it
		{"SELECT 1,", 102, "Incorrect syntax near ','."},
		{"SELECT id FROM labdb.dbo.orders ORDER", 156, "Incorrect syntax near the keyword 'ORDER'."},
		{"SELECT FROM", 156, "Incorrect syntax near the keyword 'FROM'."},
		{"SELECT * FROM nope", 208, "Invalid object name 'nope'."},
		{"SELECT nope FROM labdb.dbo.orders", 207, "Invalid column name 'nope'."},
		{"SELECT x.id FROM labdb.dbo.orders o", 4104, `The multi-part identifier "x.id" could not be bound.`},
		{"SELECT id, COUNT(*) FROM labdb.dbo.orders", 8120, "Column 'dbo.orders.id' is invalid in the select list because it is not contained in either an aggregate function or the GROUP BY clause."},
		{"DELETE FROM labdb.dbo.orders", 229, "The DELETE permission was denied on the object 'orders', database 'labdb', schema 'dbo'."},
		{"EXEC sp_who", 2812, "Could not find stored procedure 'sp_who'."},
		{"USE nowhere", 911, "Database 'nowhere' does not exist. Make sure that the name is entered correctly."},
		{"SELECT @x", 137, `Must declare the scalar variable "@x".`},
		{"SELECT * FROM srv.db.dbo.t", 7202, "Could not find server 'srv' in sys.servers."},
	} {
		serr, err := Run(tc.sql, session(), nil, &record{})
		if err != nil || serr == nil {
			t.Fatalf("%s: %v %v", tc.sql, serr, err)
		}
		if serr.Number != tc.number || !strings.HasPrefix(serr.Text, tc.text) {
			t.Errorf("%s: %d %q, want %d %q", tc.sql, serr.Number, serr.Text, tc.number, tc.text)
		}
	}
}

func TestSyntaxErrorRunsNothing(t *testing.T) {
	s, r := session(), &record{}
	if serr, _ := Run("USE labdb; SELECT 1 FROM", s, nil, r); serr == nil || serr.Number != 156 {
		t.Fatalf("%v", serr)
	}
	if s.Database != "master" || len(r.envs) != 0 || len(r.dones) != 0 {
		t.Fatalf("a batch with a syntax error ran: db %s, %d done", s.Database, len(r.dones))
	}
}

func TestUseChangesDatabase(t *testing.T) {
	s, r := session(), &record{}
	if serr, err := Run("USE LABDB", s, nil, r); serr != nil || err != nil {
		t.Fatal(serr, err)
	}
	if s.Database != "labdb" || len(r.envs) != 1 || r.envs[0].New != "labdb" || r.envs[0].Old != "master" ||
		len(r.infos) != 1 || r.infos[0] != "Changed database context to 'labdb'." {
		t.Fatalf("%+v %+v", s.Database, r)
	}
}

func TestWaitforAskSession(t *testing.T) {
	s := session()
	var asked time.Duration
	stop := errors.New("attention")
	s.Wait = func(d time.Duration) error { asked = d; return stop }
	if _, err := Run("WAITFOR DELAY '00:00:01.5'", s, nil, &record{}); !errors.Is(err, stop) || asked != 1500*time.Millisecond {
		t.Fatalf("%v %v", err, asked)
	}
	if serr, _ := Run("WAITFOR DELAY '01:00:00'", s, nil, &record{}); serr == nil || serr.Number != 148 {
		t.Fatalf("a delay over MaxWaitfor: %v", serr)
	}
}

func FuzzRun(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT * FROM labdb.dbo.orders WHERE id > 1 ORDER BY 2 DESC", "USE labdb; SELECT COUNT(item) FROM orders",
		"SELECT N'x', 1.50, NULL, @@VERSION", "WAITFOR DELAY '00:00:00'", "select [id] from \"orders\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		r := &record{}
		serr, err := Run(sql, session(), nil, r)
		if err != nil {
			t.Fatalf("a non-SQL error from %q: %v", sql, err)
		}
		if serr != nil && (serr.Number == 0 || serr.Text == "") {
			t.Fatalf("an error without number or text for %q: %+v", sql, serr)
		}
		for i, set := range r.sets {
			for _, row := range set {
				if len(row) != len(r.cols[i]) {
					t.Fatalf("%q: a row of %d values under %d columns", sql, len(row), len(r.cols[i]))
				}
			}
		}
	})
}
