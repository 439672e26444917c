package webtier

import (
	"context"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// Page is everything the site shows about a request; the JSON view is this struct.
type Page struct {
	RunningAs       string       `json:"running_as"`       // the seed's "This page is running as"
	User            string       `json:"user"`             // LAB\bob
	Principal       string       `json:"principal"`        // bob@LAB.LOCAL
	AuthenticatedBy string       `json:"authenticated_by"` // Kerberos (SPNEGO) | forms
	Impersonate     bool         `json:"impersonate"`
	Ticket          *TicketInfo  `json:"ticket,omitempty"`
	NTLM            *NTLMInfo    `json:"ntlm,omitempty"`
	Delegated       bool         `json:"delegated_credential"` // a forwarded TGT came with the request
	Mechanism       string       `json:"mechanism"`            // how the second hop was made
	Steps           []string     `json:"steps"`
	KDCError        string       `json:"kdc_error,omitempty"`
	SQLSPN          string       `json:"sql_spn"`
	SQL             SQLResult    `json:"sql"`
	Hops            []Hop        `json:"hops"`
	KDCRequests     []KDCRequest `json:"kdc_requests"` // what each hop asked the DC (ws01's as far as the site can tell)
	Picture         *Picture     `json:"-"`
	Server          string       `json:"server"`
	Time            time.Time    `json:"time"`
}

// TicketInfo describes the ticket the client presented.
type TicketInfo struct {
	SPN      string    `json:"spn"`
	Account  string    `json:"decrypted_with"` // the account whose key decrypted it
	EType    string    `json:"etype"`
	KVNO     int       `json:"kvno"`
	Flags    []string  `json:"flags"`
	Mech     string    `json:"mech"`
	GSSFlags []string  `json:"gss_flags"`
	EndTime  time.Time `json:"end_time"`
}

// NTLMInfo describes an NTLM logon: no ticket came, so there is nothing to
// delegate (MS-NLMP has no delegation; only protocol transition can go on).
type NTLMInfo struct {
	Version         string `json:"version"`          // NTLMv2
	InsideNegotiate bool   `json:"inside_negotiate"` // Negotiate fell back to NTLM (vs the NTLM scheme)
	Workstation     string `json:"workstation,omitempty"`
	MIC             bool   `json:"mic"`
	ValidatedBy     string `json:"validated_by"` // the DC that checked the response (pass-through)
}

// Hop is one arrow of the picture.
type Hop struct {
	From string `json:"from"`
	To   string `json:"to"`
	As   string `json:"as"`
	Via  string `json:"via"`
	OK   bool   `json:"ok"`
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	var id identity
	st := s.settings.get()
	if h := r.Header.Get("Authorization"); h != "" {
		var ok bool
		if id, ok = s.authenticate(w, r, st); !ok {
			return
		}
	} else if u := stateOf(r).authenticated(); u != nil {
		id = *u // NTLM authenticates the connection, not the request (IIS)
	} else if user, ok := s.formUser(r); ok {
		if _, err := s.keytab(); err != nil {
			s.unavailable(w, r, err)
			return
		}
		id = identity{principal: user + "@" + s.cfg.Realm, user: user, via: "the site's login form (not Kerberos)"}
	} else {
		if _, err := s.keytab(); err != nil {
			s.unavailable(w, r, err)
			return
		}
		s.challenge(w, r, nil, "")
		return
	}
	p := s.build(r.Context(), id, st)
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, p)
}

func (s *Server) build(ctx context.Context, id identity, st Settings) Page {
	spn := s.cfg.SQLSPN
	if spn == "" {
		spn = "MSSQLSvc/" + st.SQLHost + ":" + strconv.Itoa(st.SQLPort)
	}
	p := Page{User: id.windows(s.cfg.NetBIOS), Principal: id.principal, AuthenticatedBy: id.via, Impersonate: st.Impersonate,
		SQLSPN: spn, Server: s.cfg.Host, Time: s.cfg.Now().UTC()}
	p.RunningAs = s.cfg.NetBIOS + `\` + s.cfg.ServiceAccount
	if st.Impersonate {
		p.RunningAs = id.windows(s.cfg.NetBIOS)
	}
	first := Hop{From: "ws01", To: "web", As: id.user, Via: "form login (no Kerberos ticket)", OK: true}
	if n := id.ntlm; n != nil {
		dc, _, _ := net.SplitHostPort(s.cfg.NetlogonAddr)
		p.NTLM = &NTLMInfo{Version: "NTLMv2", InsideNegotiate: id.spnego, Workstation: n.Workstation, MIC: n.MICPresent, ValidatedBy: dc}
		first.Via = "NTLM"
		p.KDCRequests = append(p.KDCRequests, KDCRequest{From: "web", What: "NTLM pass-through (Netlogon) for " + id.user, OK: true})
	}
	if c := id.ctx; c != nil {
		p.Ticket = &TicketInfo{SPN: c.Service, Account: s.cfg.ServiceAccount, EType: events.ETypeName(c.EType), KVNO: c.KVNO,
			Flags: kmsg.FlagNames(c.Flags), Mech: c.Mech.String(), GSSFlags: gss.FlagNames(c.GSSFlags), EndTime: c.EndTime}
		p.Delegated = c.Delegated != nil
		first.Via = "Kerberos " + c.Service
		// The ticket arrived, so the client's TGS-REQ worked (and, with a
		// forwarded TGT, its request for a forwardable TGT too).
		p.KDCRequests = append(p.KDCRequests, KDCRequest{From: "ws01", What: "TGS-REQ " + c.Service, OK: true})
		if p.Delegated {
			p.KDCRequests = append(p.KDCRequests, KDCRequest{From: "ws01", What: "TGS-REQ krbtgt (forwarded TGT)", OK: true})
		}
	}
	var cred sqlCredential
	if st.Impersonate {
		cred = s.delegate(ctx, id, spn)
	} else {
		cred = s.ownCredential(ctx, spn)
	}
	p.Mechanism, p.Steps = cred.mechanism, cred.steps
	p.KDCRequests = append(p.KDCRequests, cred.calls...)
	if cred.kdcErr != nil {
		p.KDCError = errText(cred.kdcErr)
	}
	if cred.cred == nil {
		p.Steps = append(p.Steps, "no delegable credential: the connection to SQL Server goes out anonymously (NTLM, no user)")
	}
	p.SQL = s.querySQL(ctx, st, spn, cred.cred)
	second := Hop{From: "web", To: "sql", As: p.SQL.Login, Via: p.Mechanism, OK: p.SQL.Error == nil}
	if second.As == "" {
		second.As = "NT AUTHORITY\\ANONYMOUS LOGON"
		if cred.cred != nil {
			second.As = kmsg.PrincipalString(cred.cred.Info.PName, cred.cred.Info.PRealm)
		}
	}
	p.Hops = []Hop{first, second}
	p.Picture = s.picture(&p)
	return p
}

func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// serveLogin is the site's own form login (GET shows it, POST checks the
// site's form users and sets a signed cookie).
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := r.ParseForm(); err == nil {
			user, pw := r.PostForm.Get("user"), r.PostForm.Get("password")
			if want, ok := s.settings.get().FormUsers[user]; ok && pw != "" && pw == want {
				http.SetCookie(w, &http.Cookie{Name: formCookie, Value: s.signUser(user, s.cfg.Now().Add(time.Hour)), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
		}
		s.ev.Emit(events.Event{ID: events.LogonFailure, Outcome: events.Failure, Message: "An account failed to log on: the site's form login refused the user name or password",
			LogonType: 8, Package: "Forms", Address: r.RemoteAddr, Reason: "FORM_LOGIN_FAILED"})
		w.WriteHeader(http.StatusUnauthorized)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	loginTmpl.Execute(w, nil)
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// renderError writes an IIS-like error page (JSON for API clients).
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, code int, title, detail string) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"status": code, "error": title, "detail": detail})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	errorTmpl.Execute(w, map[string]any{"Code": code, "Title": title, "Detail": detail})
}

var pageTmpl = template.Must(template.Must(pictureTmpl.Clone()).New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>doublehop — {{.Server}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;line-height:1.4}
code,pre{background:#f4f4f4;padding:.1em .3em}.ok{color:#176217}.fail{color:#a11}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}.hop{font-family:monospace;white-space:pre}</style></head>
<body>
<h1>This page is running as: <b>{{.RunningAs}}</b></h1>
<p>Authenticated user: <b>{{.User}}</b> ({{.Principal}}) via {{.AuthenticatedBy}}. Impersonation is {{if .Impersonate}}on{{else}}off{{end}}
(<code>&lt;identity impersonate="{{.Impersonate}}"/&gt;</code>).</p>
{{template "picture" .Picture}}
{{with .Ticket}}<h2>The ticket Bob's browser sent</h2>
<table><tr><th>SPN</th><td>{{.SPN}}</td></tr><tr><th>decrypted with the key of</th><td>{{.Account}} (kvno {{.KVNO}})</td></tr>
<tr><th>encryption type</th><td>{{.EType}}</td></tr><tr><th>ticket flags</th><td>{{range .Flags}}{{.}} {{end}}</td></tr>
<tr><th>GSS flags</th><td>{{range .GSSFlags}}{{.}} {{end}}({{.Mech}})</td></tr></table>{{end}}
{{with .NTLM}}<h2>No ticket: Bob was authenticated with NTLM</h2>
<p class="fail">{{if .InsideNegotiate}}The browser was offered Negotiate and could not get a Kerberos ticket for this site, so it fell back to NTLM{{else}}The browser used the NTLM scheme{{end}}
({{.Version}}{{if .Workstation}}, workstation {{.Workstation}}{{end}}{{if .MIC}}, MIC checked{{end}}; validated by {{if .ValidatedBy}}{{.ValidatedBy}}{{else}}the domain controller{{end}} over Netlogon).
NTLM credentials cannot be delegated: the site holds no ticket for Bob, so it can reach SQL Server as Bob only by protocol transition
(S4U2Self, "Use any authentication protocol").</p>{{end}}
<p>Delegated credential (forwarded TGT) with the request: <b>{{if .Delegated}}yes{{else}}no{{end}}</b></p>
<h2>The hops</h2>
{{range .Hops}}<div class="hop {{if .OK}}ok{{else}}fail{{end}}">{{.From}} --[{{.Via}}]--> {{.To}}   as {{.As}}</div>{{end}}
<h2>Second hop: {{.Mechanism}}</h2><ol>{{range .Steps}}<li>{{.}}</li>{{end}}</ol>
{{if .KDCError}}<p class="fail">KDC: {{.KDCError}}</p>{{end}}
<h2>SQL Server says ({{.SQLSPN}})</h2>
{{with .SQL}}{{if .Error}}<p class="fail"><b>Msg {{.Error.Number}}, State {{.Error.State}}: {{.Error.Message}}</b></p>{{else}}
<p class="ok">SUSER_SNAME() = <b>{{.Login}}</b>, auth_scheme = <b>{{.AuthScheme}}</b></p>
<p>SQL Server's view of the ticket (lab.connection_info): delegation <b>{{.Delegation}}</b>, flags {{.TicketFlags}}{{if .TransitedServices}}, transited services (S4U_DELEGATION_INFO in the PAC): <b>{{.TransitedServices}}</b>{{end}}</p>
<table><tr><th>order</th><th>item</th><th>amount</th></tr>{{range .Orders}}<tr><td>{{.ID}}</td><td>{{.Item}}</td><td>{{.Amount}}</td></tr>{{end}}</table>{{end}}
<p><small>{{.Elapsed}}</small></p>{{end}}
<p><small>{{.Server}} {{.Time}} — <a href="?format=json">JSON</a> — <a href="/logout">sign out of the form login</a></small></p>
</body></html>
`))

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in to the site (forms authentication)</h1>
<p>This is the site's own login, not Kerberos: to reach SQL Server as you, the site must use protocol transition (S4U2Self).</p>
<form method="post" action="/login"><label>User <input name="user"></label> <label>Password <input name="password" type="password"></label> <button>Sign in</button></form>
</body></html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1>{{if .Detail}}<p>{{.Detail}}</p>{{end}}
{{if eq .Code 401}}<p>This site uses Windows integrated authentication (Negotiate/Kerberos). Or <a href="/login">sign in with the site's form</a>.</p>{{end}}
</body></html>
`))
