package ldap

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/doublehop/doublehop/dtyp"
	ber "github.com/go-asn1-ber/asn1-ber"
)

// Filter is a search filter (RFC 4511 §4.5.1.7) evaluated with AD's
// matching: case-insensitive strings, integers as numbers, DNs normalized,
// objectSid in binary or S-1-5-… form, objectCategory by short name, and the
// bitwise matching rules on integer attributes.
type Filter struct {
	kind   byte // the context tag: 0 and, 1 or, 2 not, 3 equality, 4 substrings, 5 >=, 6 <=, 7 present, 8 approx, 9 extensible
	subs   []*Filter
	attr   string
	value  []byte
	rule   string   // extensible match rule OID
	parts  [][]byte // substrings: initial (or nil), any..., final (or nil)
	hasIni bool
	hasFin bool
}

// Matching rules AD implements (MS-ADTS 3.1.1.3.4.4).
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

// maxFilterNodes bounds a filter's size (depth is bounded by the decoder).
const maxFilterNodes = 512

func ParseFilter(p *ber.Packet) (*Filter, error) {
	n := 0
	return parseFilterNode(p, &n)
}

func parseFilterNode(p *ber.Packet, n *int) (*Filter, error) {
	if *n++; *n > maxFilterNodes {
		return nil, protoErr("filter of more than %d terms", maxFilterNodes)
	}
	if p.ClassType != ber.ClassContext {
		return nil, protoErr("filter element is not context-tagged")
	}
	f := &Filter{kind: byte(p.Tag)}
	switch f.kind {
	case 0, 1:
		for _, c := range p.Children {
			s, err := parseFilterNode(c, n)
			if err != nil {
				return nil, err
			}
			f.subs = append(f.subs, s)
		}
	case 2:
		if len(p.Children) != 1 {
			return nil, protoErr("not filter with %d terms", len(p.Children))
		}
		s, err := parseFilterNode(p.Children[0], n)
		if err != nil {
			return nil, err
		}
		f.subs = []*Filter{s}
	case 3, 5, 6, 8:
		if len(p.Children) != 2 {
			return nil, protoErr("attribute value assertion with %d parts", len(p.Children))
		}
		f.attr, f.value = Str(p.Children[0]), Val(p.Children[1])
	case 4:
		if len(p.Children) != 2 {
			return nil, protoErr("substring filter with %d parts", len(p.Children))
		}
		f.attr = Str(p.Children[0])
		for i, c := range p.Children[1].Children {
			switch c.Tag {
			case 0:
				if i != 0 {
					return nil, protoErr("substring initial not first")
				}
				f.hasIni = true
			case 2:
				if i != len(p.Children[1].Children)-1 {
					return nil, protoErr("substring final not last")
				}
				f.hasFin = true
			}
			f.parts = append(f.parts, Val(c))
		}
		if len(f.parts) == 0 {
			return nil, protoErr("empty substring filter")
		}
	case 7:
		f.attr = Str(p)
	case 9:
		for _, c := range p.Children {
			switch c.Tag {
			case 1:
				f.rule = Str(c)
			case 2:
				f.attr = Str(c)
			case 3:
				f.value = Val(c)
			}
		}
	default:
		return nil, protoErr("filter choice %d", f.kind)
	}
	return f, nil
}

// String renders the filter in RFC 4515 form (for logs and tests).
func (f *Filter) String() string {
	switch f.kind {
	case 0, 1, 2:
		op := "&|!"[f.kind : f.kind+1]
		var b strings.Builder
		b.WriteString("(" + op)
		for _, s := range f.subs {
			b.WriteString(s.String())
		}
		return b.String() + ")"
	case 3:
		return "(" + f.attr + "=" + printable(f.value) + ")"
	case 5:
		return "(" + f.attr + ">=" + printable(f.value) + ")"
	case 6:
		return "(" + f.attr + "<=" + printable(f.value) + ")"
	case 8:
		return "(" + f.attr + "~=" + printable(f.value) + ")"
	case 7:
		return "(" + f.attr + "=*)"
	case 4:
		var s []string
		i := 0
		if !f.hasIni {
			s = append(s, "")
		}
		for ; i < len(f.parts); i++ {
			s = append(s, printable(f.parts[i]))
		}
		if !f.hasFin {
			s = append(s, "")
		}
		return "(" + f.attr + "=" + strings.Join(s, "*") + ")"
	case 9:
		return "(" + f.attr + ":" + f.rule + ":=" + printable(f.value) + ")"
	}
	return "(?)"
}

func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("\\%x", b)
		}
	}
	return string(b)
}

// tri-state results (RFC 4511 §4.5.1.7: TRUE, FALSE, Undefined).
type tri int8

const (
	triFalse tri = iota
	triTrue
	triUndefined
)

// Match reports whether the entry matches (Undefined does not).
func (f *Filter) Match(e *Entry) bool { return f.eval(e) == triTrue }

func (f *Filter) eval(e *Entry) tri {
	switch f.kind {
	case 0:
		r := triTrue
		for _, s := range f.subs {
			switch s.eval(e) {
			case triFalse:
				return triFalse
			case triUndefined:
				r = triUndefined
			}
		}
		return r
	case 1:
		r := triFalse
		for _, s := range f.subs {
			switch s.eval(e) {
			case triTrue:
				return triTrue
			case triUndefined:
				r = triUndefined
			}
		}
		return r
	case 2:
		switch f.subs[0].eval(e) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triUndefined
	case 7:
		if strings.EqualFold(f.attr, "objectClass") {
			return triTrue
		}
		if _, ok := e.Get(f.attr); ok && !IsSecret(f.attr) {
			return triTrue
		}
		return triFalse
	}
	if IsSecret(f.attr) {
		return triUndefined
	}
	a, ok := e.Get(f.attr)
	if !ok {
		return triUndefined
	}
	for _, v := range a.Vals {
		if f.matchValue(a.Name, v) {
			return triTrue
		}
	}
	return triFalse
}

func (f *Filter) matchValue(attr string, v []byte) bool {
	switch f.kind {
	case 3, 8:
		return EqualValue(attr, v, f.value)
	case 5, 6:
		c := compareValue(v, f.value)
		if f.kind == 5 {
			return c >= 0
		}
		return c <= 0
	case 4:
		s := strings.ToLower(string(v))
		i := 0
		for k, p := range f.parts {
			p := strings.ToLower(string(p))
			switch {
			case k == 0 && f.hasIni:
				if !strings.HasPrefix(s, p) {
					return false
				}
				i = len(p)
			case k == len(f.parts)-1 && f.hasFin:
				return len(s)-len(p) >= i && strings.HasSuffix(s, p)
			default:
				j := strings.Index(s[i:], p)
				if j < 0 {
					return false
				}
				i += j + len(p)
			}
		}
		return true
	case 9:
		switch f.rule {
		case ruleBitAnd, ruleBitOr:
			x, err1 := strconv.ParseInt(string(v), 10, 64)
			m, err2 := strconv.ParseInt(string(f.value), 10, 64)
			if err1 != nil || err2 != nil {
				return false
			}
			if f.rule == ruleBitAnd {
				return x&m == m
			}
			return x&m != 0
		case ruleInChain, "":
			return EqualValue(attr, v, f.value)
		}
	}
	return false
}

// dnAttrs hold DNs and compare as DNs.
var dnAttrs = map[string]bool{"distinguishedname": true, "member": true, "memberof": true, "objectcategory": true, "ncname": true}

func EqualValue(attr string, v, assertion []byte) bool {
	la := strings.ToLower(attr)
	switch {
	case la == "objectsid":
		if s, err := dtyp.ParseSID(string(assertion)); err == nil {
			return bytes.Equal(v, s.Binary())
		}
		return bytes.Equal(v, assertion)
	case la == "objectguid":
		return bytes.Equal(v, assertion)
	case la == "objectcategory" && !strings.Contains(string(assertion), "="):
		// AD maps a class name to its defaultObjectCategory: (objectCategory=computer).
		first, _, _ := strings.Cut(string(v), ",")
		return strings.EqualFold(strings.TrimPrefix(strings.ToLower(first), "cn="), string(assertion))
	case dnAttrs[la]:
		return NormDN(string(v)) == NormDN(string(assertion))
	}
	if x, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		if y, err := strconv.ParseInt(string(assertion), 10, 64); err == nil {
			return x == y
		}
	}
	return strings.EqualFold(string(v), string(assertion))
}

func compareValue(v, assertion []byte) int {
	if x, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		if y, err := strconv.ParseInt(string(assertion), 10, 64); err == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(strings.ToLower(string(v)), strings.ToLower(string(assertion)))
}
