package drsuapi

import (
	"strings"

	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/dcerpc/ndr"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dtyp"
	"github.com/doublehop/doublehop/ldap"
	"github.com/doublehop/doublehop/ntds"
)

// Name formats of DRSCrackNames (MS-DRSR 4.1.4.1.3 DS_NAME_FORMAT) and
// result statuses (4.1.4.1.9 DS_NAME_ERROR).
const (
	fmtUnknown      = 0
	fmtFQDN1779     = 1 // CN=bob,CN=Users,DC=lab,DC=local
	fmtNT4Account   = 2 // LAB\bob
	fmtDisplay      = 3
	fmtUniqueID     = 6 // {guid}
	fmtCanonical    = 7 // lab.local/Users/bob
	fmtUPN          = 8
	fmtCanonicalEx  = 9
	fmtSPN          = 10
	fmtSIDOrHistory = 11
	fmtDNSDomain    = 12
	// Extended formats (ntdsapi.h, MS-DRSR 4.1.4.1.3's DS_NAME_FORMAT
	// extensions): what secretsdump -just-dc-user bob offers.
	fmtNT4SansDomain = 0xfffffff9 // bob
	fmtStringSID     = 0xfffffff4 // S-1-5-21-...-1103
	fmtUPNForLogon   = 0xfffffff2

	nameOK          = 0
	nameNotFound    = 2
	nameNotUnique   = 3
	nameNoMapping   = 4
	nameDomainOnly  = 5
	maxCrackedNames = 10000
)

// requestV1 reads a call's DRS_HANDLE and its request's version and
// union arm, which must both be 1 (the only level these calls define).
func requestV1(c *dcerpc.Call) (*ndr.Reader, error) {
	r := ndr.NewReader(c.Stub)
	if _, _, err := handle(r, c); err != nil {
		return nil, err
	}
	ver := r.U32()
	if arm := r.U32(); r.Err() == nil && (ver != 1 || arm != 1) {
		return nil, dcerpc.FaultInvalidTag
	}
	return r, nil
}

// crackNames is IDL_DRSCrackNames (MS-DRSR 4.1.4): names of the domain's
// objects from one format to another, what tools call to turn LAB\bob into
// the GUID or DN they replicate.
func (s *Server) crackNames(c *dcerpc.Call) ([]byte, error) {
	r, err := requestV1(c)
	if err != nil {
		return nil, err
	}
	r.U32() // CodePage
	r.U32() // LocaleId
	r.U32() // dwFlags
	offered, desired := r.U32(), r.U32()
	n := int(r.U32())
	var names []string
	r.Ref(func() error {
		m := r.Count(4, maxCrackedNames)
		if m != n {
			r.Failf("cNames %d with %d names", n, m)
			return nil
		}
		names = make([]string, m)
		for i := 0; i < m; i++ {
			i := i
			r.Ref(func() error { names[i] = r.String(maxDN); return nil })
		}
		return nil
	})
	if err := r.Flush(); err != nil {
		return nil, err
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	v, t := s.ntds.View()
	type result struct {
		status       uint32
		domain, name string
	}
	res := make([]result, len(names))
	for i, nm := range names {
		le := crackFind(v, t, nm, offered)
		if le == nil {
			res[i] = result{status: nameNotFound}
			continue
		}
		out, ok := crackFormat(v, le, desired)
		if !ok {
			res[i] = result{status: nameNoMapping, domain: strings.ToLower(v.Lab.Realm)}
			continue
		}
		res[i] = result{status: nameOK, domain: strings.ToLower(v.Lab.Realm), name: out}
	}
	w := &ndr.Writer{}
	w.U32(1)
	w.U32(1)
	w.Ref(true, func() {
		w.U32(uint32(len(res)))
		w.Ref(true, func() {
			w.Conformant(len(res))
			for _, x := range res {
				x := x
				w.U32(x.status)
				w.Ref(x.domain != "", func() { w.String(x.domain) })
				w.Ref(x.name != "", func() { w.String(x.name) })
			}
		})
	})
	w.Flush()
	w.U32(errSuccess)
	return w.Bytes(), nil
}

// crackFind finds an object by a name in the offered format (or any
// format, for DS_UNKNOWN_NAME).
func crackFind(v *directory.View, t *ntds.Tree, name string, offered uint32) *ldapEntry {
	byAccount := func(acct string) *ldapEntry {
		e, ok := v.Account(acct)
		if !ok {
			return nil
		}
		le, _ := t.Lookup(v.Lab.DN(e.Account))
		return le
	}
	tryNT4 := func() *ldapEntry {
		dom, acct, ok := strings.Cut(name, `\`)
		if !ok || !strings.EqualFold(dom, v.Lab.NetBIOS) && !strings.EqualFold(dom, v.Lab.Realm) {
			return nil
		}
		return byAccount(acct)
	}
	tryDN := func() *ldapEntry { le, _ := t.Lookup(name); return le }
	tryGUID := func() *ldapEntry {
		norm, ok := t.Resolve("<GUID=" + strings.Trim(name, "{}") + ">")
		if !ok {
			return nil
		}
		return t.ByDN[norm]
	}
	trySID := func() *ldapEntry {
		if _, err := dtyp.ParseSID(name); err != nil {
			return nil
		}
		norm, ok := t.Resolve("<SID=" + name + ">")
		if !ok {
			return nil
		}
		return t.ByDN[norm]
	}
	tryUPN := func() *ldapEntry {
		for _, e := range v.Entries() {
			if strings.EqualFold(e.UPN, name) || strings.EqualFold(e.Name+"@"+v.Lab.Realm, name) {
				return byAccount(e.Name)
			}
		}
		return nil
	}
	switch offered {
	case fmtNT4Account:
		return tryNT4()
	case fmtNT4SansDomain:
		return byAccount(name)
	case fmtStringSID:
		return trySID()
	case fmtUPNForLogon:
		return tryUPN()
	case fmtFQDN1779:
		return tryDN()
	case fmtUniqueID:
		return tryGUID()
	case fmtSIDOrHistory:
		return trySID()
	case fmtUPN:
		return tryUPN()
	case fmtUnknown:
		for _, f := range []func() *ldapEntry{tryDN, tryNT4, tryGUID, trySID, tryUPN} {
			if le := f(); le != nil {
				return le
			}
		}
	}
	return nil
}

// crackFormat renders an object in the desired format.
func crackFormat(v *directory.View, le *ldapEntry, desired uint32) (string, bool) {
	switch desired {
	case fmtFQDN1779:
		return le.DN, true
	case fmtNT4Account:
		if le.Account == "" {
			return "", false
		}
		return v.Lab.NetBIOS + `\` + le.Account, true
	case fmtNT4SansDomain:
		return le.Account, le.Account != ""
	case fmtUniqueID:
		a, ok := le.Get("objectGUID")
		if !ok {
			return "", false
		}
		return "{" + dcerpc.UUID(guid16(a.Vals[0])).String() + "}", true
	case fmtSIDOrHistory, fmtStringSID:
		a, ok := le.Get("objectSid")
		if !ok {
			return "", false
		}
		s, err := dtyp.BinarySIDString(a.Vals[0])
		return s, err == nil
	case fmtUPN:
		if e, ok := v.Account(le.Account); ok && e.UPN != "" {
			return e.UPN, true
		}
		return "", false
	case fmtCanonical:
		return canonical(le.DN), true
	case fmtDisplay:
		if a, ok := le.Get("displayName"); ok && len(a.Vals[0]) > 0 {
			return string(a.Vals[0]), true
		}
		return "", false
	}
	return "", false
}

// canonical is DS_CANONICAL_NAME: lab.local/Users/bob.
func canonical(dn string) string {
	var dc, rest []string
	for _, rdn := range strings.Split(dn, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(rdn), "=")
		if strings.EqualFold(k, "DC") {
			dc = append(dc, val)
		} else {
			rest = append([]string{val}, rest...)
		}
	}
	return strings.Join(append([]string{strings.Join(dc, ".")}, rest...), "/")
}

// dcInfo is IDL_DRSDomainControllerInfo (MS-DRSR 4.1.5): the domain's DCs
// at info level 1, 2 or 3 — the lab's one DC.
func (s *Server) dcInfo(c *dcerpc.Call) ([]byte, error) {
	r, err := requestV1(c)
	if err != nil {
		return nil, err
	}
	var domain string
	r.Ref(func() error { domain = r.String(maxDN); return nil })
	level := r.U32()
	if err := r.Flush(); err != nil {
		return nil, err
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	if level != 1 && level != 2 && level != 3 {
		return nil, dcerpc.FaultInvalidTag
	}
	v, t := s.ntds.View()
	l := v.Lab
	w := &ndr.Writer{}
	w.U32(level)
	w.U32(level)
	dcAcct, ok := v.Account(ntds.DCAccount(v))
	if !ok || !strings.EqualFold(strings.TrimSuffix(domain, "."), strings.ToLower(l.Realm)) && !strings.EqualFold(domain, l.NetBIOS) {
		w.U32(0)
		w.Ref(false, nil)
		w.Flush()
		w.U32(errSuccess)
		return w.Bytes(), nil
	}
	base := l.DomainDN()
	netbios := strings.TrimSuffix(dcAcct.Name, "$")
	host := l.HostName(dcAcct.Account)
	site := "Default-First-Site-Name"
	siteDN := "CN=" + site + ",CN=Sites," + ntds.ConfigDN(base)
	serverDN := ntds.ServerDN(base, dcAcct.Name)
	ntdsDN := "CN=NTDS Settings," + serverDN
	computerDN := l.DN(dcAcct.Account)
	guidOf := func(dn string) [16]byte {
		if le, ok := t.Lookup(dn); ok {
			if a, ok := le.Get("objectGUID"); ok {
				return guid16(a.Vals[0])
			}
		}
		return guid16(ntds.GUID(dn))
	}
	strs := []string{netbios, host, site}
	if level >= 2 {
		strs = append(strs, siteDN)
	}
	strs = append(strs, computerDN, serverDN)
	if level >= 2 {
		strs = append(strs, ntdsDN)
	}
	w.U32(1)
	w.Ref(true, func() {
		w.Conformant(1)
		for _, str := range strs {
			str := str
			w.Ref(true, func() { w.String(str) })
		}
		w.U32(1) // fIsPdc
		w.U32(1) // fDsEnabled
		if level >= 2 {
			w.U32(1) // fIsGc
			if level == 3 {
				w.U32(0) // fIsRodc
			}
			w.GUID(guidOf(siteDN))
			w.GUID(guidOf(computerDN))
			w.GUID(guidOf(serverDN))
			w.GUID(guidOf(ntdsDN))
		}
	})
	w.Flush()
	w.U32(errSuccess)
	return w.Bytes(), nil
}

// ldapEntry is an object of the tree.
type ldapEntry = ldap.Entry
