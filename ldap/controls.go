package ldap

import (
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Controls the DC understands (MS-ADTS 3.1.1.3.4.1).
const (
	OIDPagedResults     = "1.2.840.113556.1.4.319"
	OIDSDFlags          = "1.2.840.113556.1.4.801"
	OIDShowDeleted      = "1.2.840.113556.1.4.417"
	OIDDomainScope      = "1.2.840.113556.1.4.1339"
	OIDPermissiveModify = "1.2.840.113556.1.4.1413"
	OIDExtendedDN       = "1.2.840.113556.1.4.529"
	OIDServerSort       = "1.2.840.113556.1.4.473"
	OIDShowRecycled     = "1.2.840.113556.1.4.2064"
	OIDLazyCommit       = "1.2.840.113556.1.4.619"
)

// ParsePaging reads the paged-results NewControl value (RFC 2696).
func ParsePaging(v []byte) (size int, cookie []byte, ok bool) {
	p, err := ber.DecodePacketErr(v)
	if err != nil || len(p.Children) != 2 {
		return 0, nil, false
	}
	n, ok := Int(p.Children[0])
	if !ok && len(Val(p.Children[0])) != 0 {
		return 0, nil, false
	}
	return int(n), Val(p.Children[1]), true
}

func PagingValue(size int, cookie []byte) []byte {
	s := ber.NewSequence("realSearchControlValue")
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(size), "size"))
	s.AppendChild(Octets(string(cookie)))
	return s.Bytes()
}

// EncodeEntry renders an entry with the attributes asked for (RFC 4511
// §4.5.1.8: none or "*" is every user attribute, "1.1" none).
func EncodeEntry(e *Entry, want []string, typesOnly bool) *ber.Packet {
	sel := lowerAll(want)
	all := len(want) == 0 || sel["*"]
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, OpSearchEntry, nil, "SearchResultEntry")
	p.AppendChild(Octets(e.DN))
	attrs := ber.NewSequence("attributes")
	for _, a := range e.attrs {
		if IsSecret(a.Name) || !(all || sel[strings.ToLower(a.Name)]) {
			continue
		}
		pa := ber.NewSequence("PartialAttribute")
		pa.AppendChild(Octets(a.Name))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		if !typesOnly {
			for _, v := range a.Vals {
				set.AppendChild(Octets(string(v)))
			}
		}
		pa.AppendChild(set)
		attrs.AppendChild(pa)
	}
	p.AppendChild(attrs)
	return p
}

// lowerAll lower-cases attribute selections.
func lowerAll(in []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range in {
		out[strings.ToLower(s)] = true
	}
	return out
}
