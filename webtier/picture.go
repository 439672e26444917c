package webtier

import (
	"html/template"
	"strconv"
	"strings"
)

// KDCRequest is one request a hop made to the DC, as the page draws it.
type KDCRequest struct {
	From  string `json:"from"` // ws01 | web
	What  string `json:"what"` // "TGS-REQ HTTP/web.lab.local", "S4U2Proxy MSSQLSvc/sql.lab.local:1433"
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // the RFC 4120 code name when the KDC refused
}

// Picture is the flow as the page draws it (an inline SVG, no script): the
// DC above three hosts, each host with the account it runs as, the requests
// each hop made to the DC, and the two hops with their mechanism, green when
// they worked and red, with the code, where they broke.
type Picture struct {
	Client, Web, SQL Box
	Calls            []Call
	Hop1, Hop2       Arrow
}

// Box is a host: its name and the account it runs as (Note, in small type,
// when the account is not known from here).
type Box struct{ Host, Account, Note string }

// Arrow is a hop between hosts.
type Arrow struct {
	Lines []string // label, one line each
	State string   // ok | warn (worked, but NTLM) | fail | none
}

// Call is an arrow to the DC; X is where it leaves its host.
type Call struct {
	X, Y  int
	Label string
	State string
}

func state(ok bool) string {
	if ok {
		return "ok"
	}
	return "fail"
}

// picture draws p.
func (s *Server) picture(p *Page) *Picture {
	pic := &Picture{
		Client: Box{Host: "ws01.lab.local", Account: p.User},
		Web:    Box{Host: s.cfg.Host, Account: s.cfg.NetBIOS + `\` + s.cfg.ServiceAccount},
		SQL:    Box{Host: strings.TrimPrefix(strings.SplitN(p.SQLSPN, ":", 2)[0], "MSSQLSvc/"), Account: p.SQL.ServiceAccount},
	}
	if pic.SQL.Account == "" {
		pic.SQL.Note = "SPN " + p.SQLSPN
	}
	// Hop 1: how the browser authenticated.
	h1 := Arrow{State: "ok"}
	switch {
	case p.Ticket != nil && p.Delegated:
		h1.Lines = []string{"Kerberos ticket", p.Ticket.SPN, "+ forwarded TGT"}
	case p.Ticket != nil:
		h1.Lines = []string{"Kerberos ticket", p.Ticket.SPN}
	case p.NTLM != nil:
		h1.State = "warn" // it works, and it is why the next hop cannot
		h1.Lines = []string{"NTLM (no ticket)", "cannot be delegated"}
		if p.NTLM.InsideNegotiate {
			h1.Lines[0] = "NTLM fallback (no ticket)"
		}
	default:
		h1.Lines = []string{p.AuthenticatedBy}
	}
	pic.Hop1 = h1
	// Hop 2: what reached SQL Server.
	h2 := Arrow{State: state(p.SQL.Error == nil)}
	switch p.Mechanism {
	case MechUnconstrained:
		h2.Lines = []string{"Kerberos as " + p.User, "via the forwarded TGT"}
	case MechConstrained:
		h2.Lines = []string{"Kerberos as " + p.User, "via S4U2Proxy"}
	case MechProtocolTransition:
		h2.Lines = []string{"Kerberos as " + p.User, "via S4U2Self + S4U2Proxy"}
	case MechOwnIdentity:
		h2.Lines = []string{"Kerberos as " + pic.Web.Account, "(impersonation off)"}
	default:
		h2.Lines = []string{"anonymous", "(no delegable credential)"}
	}
	if e := p.SQL.Error; e != nil {
		l := "SQL error " + strconv.Itoa(int(e.Number))
		if strings.Contains(e.Message, "ANONYMOUS LOGON") {
			l += ": ANONYMOUS LOGON"
		}
		h2.Lines = append(h2.Lines, l)
	} else if p.SQL.AuthScheme != "" {
		h2.Lines = append(h2.Lines, "SQL: "+p.SQL.Login+" "+p.SQL.AuthScheme)
	}
	pic.Hop2 = h2
	// The requests to the DC: the client's on the left, the site's in the middle.
	y := map[string]int{}
	for _, r := range p.KDCRequests {
		label := r.What
		if !r.OK && r.Error != "" {
			label += ": " + r.Error
		}
		x := 150
		if r.From == "web" {
			x = 500
		}
		pic.Calls = append(pic.Calls, Call{X: x, Y: 170 + 22*y[r.From], Label: label, State: state(r.OK)})
		y[r.From]++
	}
	return pic
}

// pictureTmpl is the SVG: 1000×460 user units, scaled to the page width.
var pictureTmpl = template.Must(template.New("picture").Parse(`{{define "picture"}}
<svg id="flow" role="img" aria-label="the double hop" viewBox="0 0 1000 460" width="100%" style="max-width:1000px;font-family:system-ui,sans-serif">
<defs>
<marker id="ah-ok" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#1b7f1b"/></marker>
<marker id="ah-fail" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#b31d1d"/></marker>
<marker id="ah-warn" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#b8860b"/></marker>
<style>.box{fill:#f5f7fa;stroke:#445;stroke-width:2}.dc{fill:#eef3fb}.host{font-size:19px;font-weight:700}.acct{font-size:16px}
.ok{stroke:#1b7f1b;fill:#1b7f1b}.fail{stroke:#b31d1d;fill:#b31d1d}.warn{stroke:#b8860b;fill:#b8860b}.lbl{font-size:15px;stroke:none}.call{font-size:14px;stroke:none}</style>
</defs>
<g class="tier" data-tier="dc"><rect class="box dc" x="340" y="10" width="320" height="70" rx="8"/>
<text class="host" x="500" y="40" text-anchor="middle">dc.lab.local — KDC</text>
<text class="acct" x="500" y="64" text-anchor="middle">domain controller (AS, TGS, S4U)</text></g>
{{range .Calls}}<g class="call-arrow {{.State}}" data-state="{{.State}}"><line x1="{{.X}}" y1="{{if eq .X 150}}300{{else}}300{{end}}" x2="{{if eq .X 150}}400{{else}}500{{end}}" y2="80" class="{{.State}}" stroke-width="2.5" marker-end="url(#ah-{{.State}})"/>
<text class="call {{.State}}" x="{{if eq .X 150}}20{{else}}515{{end}}" y="{{.Y}}">{{.Label}}</text></g>
{{end}}
<g class="tier" data-tier="ws01"><rect class="box" x="20" y="300" width="260" height="90" rx="8"/>
<text class="host" x="150" y="334" text-anchor="middle">{{.Client.Host}}</text>
<text class="acct" x="150" y="362" text-anchor="middle">user {{.Client.Account}}</text></g>
<g class="tier" data-tier="web"><rect class="box" x="370" y="300" width="260" height="90" rx="8"/>
<text class="host" x="500" y="334" text-anchor="middle">{{.Web.Host}}</text>
<text class="acct" x="500" y="362" text-anchor="middle">runs as {{.Web.Account}}</text></g>
<g class="tier" data-tier="sql"><rect class="box" x="720" y="300" width="260" height="90" rx="8"/>
<text class="host" x="850" y="334" text-anchor="middle">{{.SQL.Host}}</text>
{{if .SQL.Account}}<text class="acct" x="850" y="362" text-anchor="middle">runs as {{.SQL.Account}}</text>{{else}}<text class="call" x="850" y="362" text-anchor="middle">{{.SQL.Note}}</text>{{end}}</g>
<g class="hoparrow" data-hop="1" data-state="{{.Hop1.State}}"><line x1="280" y1="345" x2="368" y2="345" class="{{.Hop1.State}}" stroke-width="4" marker-end="url(#ah-{{.Hop1.State}})"/>
{{range $i, $l := .Hop1.Lines}}<text class="lbl {{$.Hop1.State}}" x="324" y="{{if eq $i 0}}412{{else if eq $i 1}}432{{else}}452{{end}}" text-anchor="middle">{{$l}}</text>{{end}}</g>
<g class="hoparrow" data-hop="2" data-state="{{.Hop2.State}}"><line x1="630" y1="345" x2="718" y2="345" class="{{.Hop2.State}}" stroke-width="4" marker-end="url(#ah-{{.Hop2.State}})"/>
{{range $i, $l := .Hop2.Lines}}<text class="lbl {{$.Hop2.State}}" x="674" y="{{if eq $i 0}}412{{else if eq $i 1}}432{{else}}452{{end}}" text-anchor="middle">{{$l}}</text>{{end}}</g>
</svg>{{end}}`))
