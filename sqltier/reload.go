package sqltier

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/keytab"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
	"gopkg.in/yaml.v3"
)

// Update changes a running server's login table, data, keys or clock-skew
// policy; nil / zero fields stay.
type Update struct {
	Logins  []Login
	Data    []Order
	Keytab  *gokeytab.Keytab
	MaxSkew time.Duration
}

// live is the part of the configuration that changes at run time (ALTER
// LOGIN, a new keytab after a password reset); swapped atomically.
type live struct {
	logins   map[string]Login
	data     []Order
	acceptor *gss.Acceptor
	keytab   *gokeytab.Keytab
	skew     time.Duration
}

func (s *Server) newLive(prev *live, u Update) *live {
	l := &live{logins: map[string]Login{}}
	if prev != nil {
		*l = *prev
	}
	if u.Logins != nil {
		l.logins = map[string]Login{}
		for _, x := range u.Logins {
			l.logins[strings.ToLower(x.Name)] = x
		}
	}
	if u.Data != nil {
		l.data = u.Data
	}
	if l.keytab == nil {
		l.keytab, l.skew = s.cfg.Keytab, s.cfg.MaxSkew
	}
	if u.Keytab != nil || u.MaxSkew > 0 || l.acceptor == nil {
		if u.Keytab != nil {
			l.keytab = u.Keytab
		}
		if u.MaxSkew > 0 {
			l.skew = u.MaxSkew
			s.replay.SetSkew(u.MaxSkew)
		}
		l.acceptor = gss.NewAcceptor(gss.AcceptorConfig{Keytab: l.keytab, Realm: s.cfg.Realm, MaxSkew: l.skew, Now: s.cfg.Now, Replay: s.replay})
	}
	return l
}

// Apply changes the running configuration; new logins use it at once.
func (s *Server) Apply(u Update) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	s.live.Store(s.newLive(s.live.Load(), u))
}

// current returns the live configuration, refreshed first when cfg.Refresh says so.
func (s *Server) current() *live {
	if s.cfg.Refresh != nil {
		if u := s.cfg.Refresh(); u != nil {
			s.Apply(*u)
		}
	}
	return s.live.Load()
}

// WatchFiles returns a Config.Refresh that re-reads the `sql:` section of a
// YAML settings file (logins, orders) and a keytab file when they change —
// the lab's directory file and the tier's exported keytab.
func WatchFiles(settingsPath, keytabPath, netbios string) func() *Update {
	w := &fileWatch{settings: settingsPath, netbios: netbios}
	if keytabPath != "" {
		w.keytab = &keytab.File{Path: keytabPath}
	}
	return w.refresh
}

type fileWatch struct {
	settings, netbios string
	keytab            *keytab.File
	mu                sync.Mutex
	sStamp            string
	kt                *gokeytab.Keytab
}

func stamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
}

func (w *fileWatch) refresh() *Update {
	w.mu.Lock()
	defer w.mu.Unlock()
	var u Update
	changed := false
	if w.settings != "" {
		if st := stamp(w.settings); st != w.sStamp {
			w.sStamp = st
			if logins, data, skew, ok := readSettings(w.settings, w.netbios); ok {
				u.Logins, u.Data, u.MaxSkew, changed = logins, data, skew, true
			}
		}
	}
	if w.keytab != nil {
		if kt, err := w.keytab.Keytab(); err == nil && kt != w.kt {
			w.kt, u.Keytab, changed = kt, kt, true
		}
	}
	if !changed {
		return nil
	}
	return &u
}

// readSettings parses the `sql:` section of a lab file (and the domain's
// skew policy). An absent logins list keeps the server's table (nil).
func readSettings(path, netbios string) ([]Login, []Order, time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, 0, false
	}
	var doc struct {
		SQL struct {
			Logins *[]struct {
				Login  string `yaml:"login"`
				Access string `yaml:"access"`
			} `yaml:"logins"`
			Orders []struct {
				ID     int    `yaml:"id"`
				Owner  string `yaml:"owner"`
				Item   string `yaml:"item"`
				Amount string `yaml:"amount"`
			} `yaml:"orders"`
		} `yaml:"sql"`
		Policy struct {
			MaxSkew string `yaml:"max_skew"`
		} `yaml:"policy"`
	}
	if yaml.Unmarshal(b, &doc) != nil {
		return nil, nil, 0, false
	}
	var logins []Login
	if doc.SQL.Logins != nil {
		logins = []Login{}
		for _, l := range *doc.SQL.Logins {
			a := Grant
			switch strings.ToLower(l.Access) {
			case "deny":
				a = Deny
			case "disabled":
				a = Disabled
			}
			logins = append(logins, Login{Name: l.Login, Access: a})
		}
	}
	var data []Order
	for _, o := range doc.SQL.Orders {
		data = append(data, Order{ID: o.ID, Owner: o.Owner, Item: o.Item, Amount: o.Amount})
	}
	if data == nil {
		data = DefaultData(netbios)
	}
	skew, _ := time.ParseDuration(doc.Policy.MaxSkew)
	return logins, data, skew, true
}
