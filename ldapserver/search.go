package ldapserver

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/doublehop/doublehop/ldap"
	"github.com/doublehop/doublehop/ntds"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Search scopes (RFC 4511 §4.5.1.2).
const (
	scopeBase    = 0
	scopeOne     = 1
	scopeSubtree = 2
)

var knownControls = map[string]bool{
	ldap.OIDPagedResults: true, ldap.OIDSDFlags: true, ldap.OIDShowDeleted: true, ldap.OIDDomainScope: true, ldap.OIDPermissiveModify: true,
	ldap.OIDExtendedDN: true, ldap.OIDShowRecycled: true, ldap.OIDLazyCommit: true, oidRODCJoin: true,
}

// MaxPageSize is AD's LDAP policy MaxPageSize: a search returns at most this
// many entries per page (or in all, without the paged-results ldap.NewControl).
const MaxPageSize = 1000

// criticalUnknown returns an unknown ldap.NewControl marked critical (RFC 4511 §4.1.11).
func criticalUnknown(cs []ldap.Control) string {
	for _, c := range cs {
		if c.Critical && !knownControls[c.OID] {
			return c.OID
		}
	}
	return ""
}

func (c *conn) handleSearch(m *ldap.Message) {
	p := m.Op
	done := func(code ldap.ResultCode, diag string, ctl ...*ber.Packet) {
		c.reply(m.ID, ldap.Result(ldap.OpSearchDone, code, "", diag), ctl...)
	}
	if len(p.Children) < 8 {
		done(ldap.ProtocolErrorCode, "search request is missing fields")
		return
	}
	if oid := criticalUnknown(m.Controls); oid != "" {
		done(ldap.UnavailableCriticalExtension, "00000057: LdapErr: DSID-0C090A3D, comment: Error processing ldap.NewControl "+oid+", data 0, v4563")
		return
	}
	baseDN := ldap.Str(p.Children[0])
	scope, _ := ldap.Int(p.Children[1])
	sizeLimit, _ := ldap.Int(p.Children[3])
	typesOnly := len(ldap.Val(p.Children[5])) == 1 && ldap.Val(p.Children[5])[0] != 0
	f, err := ldap.ParseFilter(p.Children[6])
	if err != nil {
		done(ldap.ProtocolErrorCode, err.Error())
		return
	}
	var want []string
	for _, a := range p.Children[7].Children {
		want = append(want, ldap.Str(a))
	}
	if strings.TrimSpace(baseDN) == "" && scope == scopeBase {
		e := c.s.rootDSE()
		for _, a := range want {
			if strings.EqualFold(a, "tokenGroups") {
				c.tokenGroups(e)
			}
		}
		if f.Match(e) {
			c.reply(m.ID, ldap.EncodeEntry(e, want, typesOnly))
		}
		done(ldap.Success, "")
		return
	}
	if c.needBind(m.ID, ldap.OpSearchDone) {
		return
	}
	_, t := c.s.view()
	base, ok := t.Resolve(baseDN)
	if !ok {
		done(ldap.NoSuchObject, noSuchObject(bestMatch(t, base)).Message)
		return
	}
	var hits []*ldap.Entry
	for i, e := range t.Entries {
		n := t.Norm[i]
		in := false
		switch scope {
		case scopeBase:
			in = n == base
		case scopeOne:
			in = ldap.ParentDN(n) == base
		default:
			in = n == base || strings.HasSuffix(n, ","+base)
		}
		if in && f.Match(e) {
			hits = append(hits, e)
		}
	}
	// Paged results (RFC 2696): the cookie is the offset of the next entry.
	var paging *ldap.Control
	for i := range m.Controls {
		if m.Controls[i].OID == ldap.OIDPagedResults {
			paging = &m.Controls[i]
		}
	}
	if paging != nil {
		size, cookie, ok := ldap.ParsePaging(paging.Value)
		if !ok {
			done(ldap.ProtocolErrorCode, "00000057: LdapErr: DSID-0C090A3D, comment: Error processing ldap.NewControl, data 0, v4563")
			return
		}
		if size <= 0 || size > MaxPageSize {
			size = MaxPageSize
		}
		off := 0
		if len(cookie) == 8 {
			off = int(binary.BigEndian.Uint64(cookie))
		}
		if off > len(hits) {
			off = len(hits)
		}
		end := min(off+size, len(hits))
		for _, e := range hits[off:end] {
			c.reply(m.ID, ldap.EncodeEntry(e, want, typesOnly))
		}
		var next []byte
		if end < len(hits) {
			next = binary.BigEndian.AppendUint64(nil, uint64(end))
		}
		done(ldap.Success, "", ldap.NewControl(ldap.OIDPagedResults, false, ldap.PagingValue(0, next)))
		return
	}
	limit := MaxPageSize
	if sizeLimit > 0 && int(sizeLimit) < limit {
		limit = int(sizeLimit)
	}
	for i, e := range hits {
		if i == limit {
			done(ldap.SizeLimitExceeded, "")
			return
		}
		c.reply(m.ID, ldap.EncodeEntry(e, want, typesOnly))
	}
	done(ldap.Success, "")
}

// bestMatch is the deepest existing ancestor of dn (matchedDN of noSuchObject).
func bestMatch(t *ntds.Tree, dn string) string {
	for p := ldap.ParentDN(dn); p != ""; p = ldap.ParentDN(p) {
		if e, ok := t.ByDN[p]; ok {
			return e.DN
		}
	}
	return ""
}

// rootDSE is the server's own entry (RFC 4512 §5.1; MS-ADTS 3.1.1.3.2).
func (s *Server) rootDSE() *ldap.Entry {
	v, _ := s.view()
	l := v.Lab
	base := l.DomainDN()
	dc := ntds.ServerDN(base, s.cfg.Account)
	e := &ldap.Entry{DN: ""}
	e.Add("currentTime", s.cfg.Now().UTC().Format("20060102150405.0Z"))
	e.Add("subschemaSubentry", "CN=Aggregate,"+ntds.SchemaDN(base))
	e.Add("dsServiceName", "CN=NTDS Settings,"+dc)
	e.Add("namingContexts", base, ntds.ConfigDN(base), ntds.SchemaDN(base))
	e.Add("defaultNamingContext", base)
	e.Add("rootDomainNamingContext", base)
	e.Add("configurationNamingContext", ntds.ConfigDN(base))
	e.Add("schemaNamingContext", ntds.SchemaDN(base))
	e.Add("serverName", dc)
	e.Add("supportedControl", ldap.OIDPagedResults, ldap.OIDSDFlags, ldap.OIDShowDeleted, ldap.OIDDomainScope, ldap.OIDPermissiveModify,
		ldap.OIDExtendedDN, ldap.OIDShowRecycled, ldap.OIDLazyCommit)
	e.Add("supportedLDAPVersion", "3")
	e.Add("supportedLDAPPolicies", "MaxPageSize", "MaxConnIdleTime", "MaxReceiveBuffer")
	e.Add("supportedSASLMechanisms", "GSSAPI", "GSS-SPNEGO")
	e.Add("supportedExtension", oidStartTLS, oidWhoAmI)
	e.Add("supportedCapabilities", "1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670", "1.2.840.113556.1.4.1791", "1.2.840.113556.1.4.1935")
	e.Add("dnsHostName", s.cfg.Host)
	e.Add("ldapServiceName", strings.ToLower(l.Realm)+":"+strings.ToLower(s.cfg.Account)+"@"+l.Realm)
	e.Add("isSynchronized", "TRUE")
	e.Add("isGlobalCatalogReady", "TRUE")
	e.Add("domainFunctionality", "7")
	e.Add("forestFunctionality", "7")
	e.Add("domainControllerFunctionality", "7")
	e.Add("highestCommittedUSN", strconv.FormatUint(v.Version, 10))
	return e
}

func (c *conn) handleCompare(m *ldap.Message) {
	if c.needBind(m.ID, ldap.OpCompareResponse) {
		return
	}
	p := m.Op
	if len(p.Children) < 2 || len(p.Children[1].Children) < 2 {
		c.reply(m.ID, ldap.Result(ldap.OpCompareResponse, ldap.ProtocolErrorCode, "", "compare request is missing fields"))
		return
	}
	_, t := c.s.view()
	e, ok := t.Lookup(ldap.Str(p.Children[0]))
	if !ok {
		c.reply(m.ID, ldap.Result(ldap.OpCompareResponse, ldap.NoSuchObject, "", noSuchObject(ldap.Str(p.Children[0])).Message))
		return
	}
	attr, want := ldap.Str(p.Children[1].Children[0]), ldap.Val(p.Children[1].Children[1])
	a, ok := e.Get(attr)
	if !ok || ldap.IsSecret(attr) {
		c.reply(m.ID, ldap.Result(ldap.OpCompareResponse, ldap.NoSuchAttribute, "", "no such attribute "+attr))
		return
	}
	for _, x := range a.Vals {
		if ldap.EqualValue(a.Name, x, want) {
			c.reply(m.ID, ldap.Result(ldap.OpCompareResponse, ldap.CompareTrue, "", ""))
			return
		}
	}
	c.reply(m.ID, ldap.Result(ldap.OpCompareResponse, ldap.CompareFalse, "", ""))
}
