// Package scenarios is the lab's catalog of break/observe/fix stories and the
// one engine that runs them: the CLI (workshops, step by step), `go test`
// (every scenario is a test) and the container harness share it. A scenario is
// a YAML data file; adding one is adding a file to catalog/.
package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed catalog/*.yaml
var catalog embed.FS

// Scenario is one story.
type Scenario struct {
	ID          string   `yaml:"id"`
	Title       string   `yaml:"title"`
	Tags        []string `yaml:"tags"`
	Story       string   `yaml:"story"` // what a real admin sees and thinks
	Setup       []string `yaml:"setup"` // admin commands applied to the default lab first (the patch)
	Steps       []Step   `yaml:"steps"`
	Explanation string   `yaml:"explanation"` // the why, citing the protocol
	Fix         []string `yaml:"fix"`         // the commands that fix it (a step proves they do)
	References  []string `yaml:"references"`
}

// Step is one action and what every tier must show afterwards.
type Step struct {
	Name   string `yaml:"name"`
	Say    string `yaml:"say"` // narration for workshops
	Do     string `yaml:"do"`  // the action (see Actions)
	Expect Expect `yaml:"expect"`
}

// Expect lists what must be true after a step; empty fields are not checked.
type Expect struct {
	Fails         bool         `yaml:"fails"`          // the action itself fails (kinit refused, no ticket)
	Error         string       `yaml:"error"`          // substring of the action's error
	HTTP          int          `yaml:"http"`           // status of the page
	WebAuth       string       `yaml:"web_auth"`       // Kerberos | NTLM: what Bob's browser authenticated with
	RunningAs     string       `yaml:"running_as"`     // "This page is running as"
	Mechanism     string       `yaml:"mechanism"`      // substring of the page's second-hop mechanism
	Delegated     *bool        `yaml:"delegated"`      // a forwarded TGT came with the request
	KerberosError string       `yaml:"kerberos_error"` // KRB-ERROR the server sent back to the client
	KDCError      string       `yaml:"kdc_error"`      // substring of the page's KDC error (second hop)
	SQLLogin      string       `yaml:"sql_login"`      // SUSER_SNAME() as SQL Server saw it
	AuthScheme    string       `yaml:"auth_scheme"`
	SQLDelegation string       `yaml:"sql_delegation"` // substring of lab.connection_info.delegation
	SQLTransited  string       `yaml:"sql_transited"`  // S4U_DELEGATION_INFO transited services SQL read from the PAC
	SQLError      int          `yaml:"sql_error"`      // SQL error number the client got
	SQLState      int          `yaml:"sql_state"`
	Orders        *int         `yaml:"orders"`    // rows of dbo.orders the user sees
	Output        []string     `yaml:"output"`    // substrings of the action's printed output
	NoOutput      []string     `yaml:"no_output"` // substrings it must not hold
	Events        []EventMatch `yaml:"events"`
	NoEvents      []EventMatch `yaml:"no_events"`
	Explain       string       `yaml:"explain"` // the diagnosis id `doublehop explain` must give
}

// EventMatch selects events of the step; empty fields match anything.
type EventMatch struct {
	Host       string `yaml:"host"` // dc, web, sql, ws01 (or the FQDN)
	ID         int    `yaml:"id"`
	Outcome    string `yaml:"outcome"`
	Code       string `yaml:"code"` // code name, KDC_ERR_BADOPTION
	Reason     string `yaml:"reason"`
	Account    string `yaml:"account"`
	Client     string `yaml:"client"` // substring
	Service    string `yaml:"service"`
	Mechanism  string `yaml:"mechanism"`
	Login      string `yaml:"login"`
	State      int    `yaml:"state"`
	Status     string `yaml:"status"` // substring of the NTSTATUS
	Transited  string `yaml:"transited"`
	Package    string `yaml:"package"`     // Kerberos | NTLM (4624, 4625)
	AuthScheme string `yaml:"auth_scheme"` // KERBEROS | NTLM (SQL Server's events)
}

// Parse reads one scenario file.
func Parse(b []byte) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if s.ID == "" || s.Title == "" || len(s.Steps) == 0 {
		return nil, fmt.Errorf("scenario %q: id, title and steps are required", s.ID)
	}
	for i, st := range s.Steps {
		if strings.TrimSpace(st.Do) == "" {
			return nil, fmt.Errorf("scenario %s step %d: do is required", s.ID, i+1)
		}
		if _, _, err := parseAction(st.Do); err != nil {
			return nil, fmt.Errorf("scenario %s step %d: %w", s.ID, i+1, err)
		}
	}
	return &s, nil
}

// Catalog returns every built-in scenario, sorted by id.
func Catalog() ([]*Scenario, error) {
	var out []*Scenario
	err := fs.WalkDir(catalog, "catalog", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		b, err := catalog.ReadFile(p)
		if err != nil {
			return err
		}
		s, err := Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, s)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// Find returns a catalog scenario by id (or a unique id prefix).
func Find(id string) (*Scenario, error) {
	all, err := Catalog()
	if err != nil {
		return nil, err
	}
	var hits []*Scenario
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
		if strings.HasPrefix(s.ID, id) {
			hits = append(hits, s)
		}
	}
	if len(hits) == 1 {
		return hits[0], nil
	}
	return nil, fmt.Errorf("no scenario %q (doublehop scenario list)", id)
}
