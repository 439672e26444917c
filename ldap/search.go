package ldap

import (
	"encoding/binary"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Search scopes (RFC 4511 §4.5.1.2).
const (
	scopeBase    = 0
	scopeOne     = 1
	scopeSubtree = 2
)

// Controls the DC understands (MS-ADTS 3.1.1.3.4.1).
const (
	oidPagedResults     = "1.2.840.113556.1.4.319"
	oidSDFlags          = "1.2.840.113556.1.4.801"
	oidShowDeleted      = "1.2.840.113556.1.4.417"
	oidDomainScope      = "1.2.840.113556.1.4.1339"
	oidPermissiveModify = "1.2.840.113556.1.4.1413"
	oidExtendedDN       = "1.2.840.113556.1.4.529"
	oidServerSort       = "1.2.840.113556.1.4.473"
	oidShowRecycled     = "1.2.840.113556.1.4.2064"
	oidLazyCommit       = "1.2.840.113556.1.4.619"
)

var knownControls = map[string]bool{
	oidPagedResults: true, oidSDFlags: true, oidShowDeleted: true, oidDomainScope: true, oidPermissiveModify: true,
	oidExtendedDN: true, oidShowRecycled: true, oidLazyCommit: true,
}

// MaxPageSize is AD's LDAP policy MaxPageSize: a search returns at most this
// many entries per page (or in all, without the paged-results control).
const MaxPageSize = 1000

// criticalUnknown returns an unknown control marked critical (RFC 4511 §4.1.11).
func criticalUnknown(cs []Control) string {
	for _, c := range cs {
		if c.Critical && !knownControls[c.OID] {
			return c.OID
		}
	}
	return ""
}

func (c *conn) handleSearch(m *Message) {
	p := m.Op
	done := func(code ResultCode, diag string, ctl ...*ber.Packet) {
		c.reply(m.ID, result(opSearchDone, code, "", diag), ctl...)
	}
	if len(p.Children) < 8 {
		done(ProtocolErrorCode, "search request is missing fields")
		return
	}
	if oid := criticalUnknown(m.Controls); oid != "" {
		done(UnavailableCriticalExtension, "00000057: LdapErr: DSID-0C090A3D, comment: Error processing control "+oid+", data 0, v4563")
		return
	}
	baseDN := str(p.Children[0])
	scope, _ := intOf(p.Children[1])
	sizeLimit, _ := intOf(p.Children[3])
	typesOnly := len(val(p.Children[5])) == 1 && val(p.Children[5])[0] != 0
	f, err := parseFilter(p.Children[6])
	if err != nil {
		done(ProtocolErrorCode, err.Error())
		return
	}
	var want []string
	for _, a := range p.Children[7].Children {
		want = append(want, str(a))
	}
	if strings.TrimSpace(baseDN) == "" && scope == scopeBase {
		e := c.s.rootDSE()
		if f.Match(e) {
			c.reply(m.ID, searchEntry(e, want, typesOnly))
		}
		done(Success, "")
		return
	}
	if c.needBind(m.ID, opSearchDone) {
		return
	}
	_, t := c.s.view()
	base := normDN(baseDN)
	if _, ok := t.byDN[base]; !ok {
		done(NoSuchObject, noSuchObject(bestMatch(t, base)).Message)
		return
	}
	var hits []*Entry
	for _, e := range t.entries {
		n := normDN(e.DN)
		in := false
		switch scope {
		case scopeBase:
			in = n == base
		case scopeOne:
			in = parentDN(n) == base
		default:
			in = n == base || strings.HasSuffix(n, ","+base)
		}
		if in && f.Match(e) {
			hits = append(hits, e)
		}
	}
	// Paged results (RFC 2696): the cookie is the offset of the next entry.
	var paging *Control
	for i := range m.Controls {
		if m.Controls[i].OID == oidPagedResults {
			paging = &m.Controls[i]
		}
	}
	if paging != nil {
		size, cookie, ok := parsePaging(paging.Value)
		if !ok {
			done(ProtocolErrorCode, "00000057: LdapErr: DSID-0C090A3D, comment: Error processing control, data 0, v4563")
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
			c.reply(m.ID, searchEntry(e, want, typesOnly))
		}
		var next []byte
		if end < len(hits) {
			next = binary.BigEndian.AppendUint64(nil, uint64(end))
		}
		done(Success, "", control(oidPagedResults, false, pagingValue(0, next)))
		return
	}
	limit := MaxPageSize
	if sizeLimit > 0 && int(sizeLimit) < limit {
		limit = int(sizeLimit)
	}
	for i, e := range hits {
		if i == limit {
			done(SizeLimitExceeded, "")
			return
		}
		c.reply(m.ID, searchEntry(e, want, typesOnly))
	}
	done(Success, "")
}

// bestMatch is the deepest existing ancestor of dn (matchedDN of noSuchObject).
func bestMatch(t *tree, dn string) string {
	for p := parentDN(dn); p != ""; p = parentDN(p) {
		if e, ok := t.byDN[p]; ok {
			return e.DN
		}
	}
	return ""
}

func parsePaging(v []byte) (size int, cookie []byte, ok bool) {
	p, err := ber.DecodePacketErr(v)
	if err != nil || len(p.Children) != 2 {
		return 0, nil, false
	}
	n, ok := intOf(p.Children[0])
	if !ok && len(val(p.Children[0])) != 0 {
		return 0, nil, false
	}
	return int(n), val(p.Children[1]), true
}

func pagingValue(size int, cookie []byte) []byte {
	s := ber.NewSequence("realSearchControlValue")
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(size), "size"))
	s.AppendChild(octets(string(cookie)))
	return s.Bytes()
}

// searchEntry renders an entry with the attributes asked for (RFC 4511
// §4.5.1.8: none or "*" is every user attribute, "1.1" none).
func searchEntry(e *Entry, want []string, typesOnly bool) *ber.Packet {
	sel := lowerAll(want)
	all := len(want) == 0 || sel["*"]
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opSearchEntry, nil, "SearchResultEntry")
	p.AppendChild(octets(e.DN))
	attrs := ber.NewSequence("attributes")
	for _, a := range e.attrs {
		if secretAttrs[strings.ToLower(a.Name)] || !(all || sel[strings.ToLower(a.Name)]) {
			continue
		}
		pa := ber.NewSequence("PartialAttribute")
		pa.AppendChild(octets(a.Name))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		if !typesOnly {
			for _, v := range a.Vals {
				set.AppendChild(octets(string(v)))
			}
		}
		pa.AppendChild(set)
		attrs.AppendChild(pa)
	}
	p.AppendChild(attrs)
	return p
}

// rootDSE is the server's own entry (RFC 4512 §5.1; MS-ADTS 3.1.1.3.2).
func (s *Server) rootDSE() *Entry {
	v, _ := s.view()
	l := v.Lab
	base := l.DomainDN()
	dc := ""
	if a, ok := v.Account(s.cfg.Account); ok {
		dc = l.DN(a.Account)
	}
	e := &Entry{DN: ""}
	e.add("currentTime", s.cfg.Now().UTC().Format("20060102150405.0Z"))
	e.add("subschemaSubentry", "CN=Aggregate,"+schemaDN(base))
	e.add("dsServiceName", "CN=NTDS Settings,"+dc)
	e.add("namingContexts", base, configDN(base), schemaDN(base))
	e.add("defaultNamingContext", base)
	e.add("rootDomainNamingContext", base)
	e.add("configurationNamingContext", configDN(base))
	e.add("schemaNamingContext", schemaDN(base))
	e.add("serverName", dc)
	e.add("supportedControl", oidPagedResults, oidSDFlags, oidShowDeleted, oidDomainScope, oidPermissiveModify,
		oidExtendedDN, oidShowRecycled, oidLazyCommit)
	e.add("supportedLDAPVersion", "3")
	e.add("supportedLDAPPolicies", "MaxPageSize", "MaxConnIdleTime", "MaxReceiveBuffer")
	e.add("supportedSASLMechanisms", "GSSAPI", "GSS-SPNEGO")
	e.add("supportedExtension", oidStartTLS, oidWhoAmI)
	e.add("supportedCapabilities", "1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670", "1.2.840.113556.1.4.1791", "1.2.840.113556.1.4.1935")
	e.add("dnsHostName", s.cfg.Host)
	e.add("ldapServiceName", strings.ToLower(l.Realm)+":"+strings.ToLower(s.cfg.Account)+"@"+l.Realm)
	e.add("isSynchronized", "TRUE")
	e.add("isGlobalCatalogReady", "TRUE")
	e.add("domainFunctionality", "7")
	e.add("forestFunctionality", "7")
	e.add("domainControllerFunctionality", "7")
	e.add("highestCommittedUSN", strconv.FormatUint(v.Version, 10))
	return e
}

func (c *conn) handleCompare(m *Message) {
	if c.needBind(m.ID, opCompareResponse) {
		return
	}
	p := m.Op
	if len(p.Children) < 2 || len(p.Children[1].Children) < 2 {
		c.reply(m.ID, result(opCompareResponse, ProtocolErrorCode, "", "compare request is missing fields"))
		return
	}
	_, t := c.s.view()
	e, ok := t.byDN[normDN(str(p.Children[0]))]
	if !ok {
		c.reply(m.ID, result(opCompareResponse, NoSuchObject, "", noSuchObject(str(p.Children[0])).Message))
		return
	}
	attr, val := str(p.Children[1].Children[0]), val(p.Children[1].Children[1])
	a, ok := e.Get(attr)
	if !ok || secretAttrs[strings.ToLower(attr)] {
		c.reply(m.ID, result(opCompareResponse, NoSuchAttribute, "", "no such attribute "+attr))
		return
	}
	for _, x := range a.Vals {
		if equalValue(a.Name, x, val) {
			c.reply(m.ID, result(opCompareResponse, CompareTrue, "", ""))
			return
		}
	}
	c.reply(m.ID, result(opCompareResponse, CompareFalse, "", ""))
}
