package kmsg

import (
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Name types (RFC 4120 §6.2, MS-KILE 2.2.x).
const (
	NTUnknown     int32 = 0
	NTPrincipal   int32 = 1
	NTSrvInst     int32 = 2
	NTSrvHst      int32 = 3
	NTEnterprise  int32 = 10
	NTWellKnown   int32 = 11 // WELLKNOWN/ANONYMOUS (RFC 8062)
	NTMSPrincipal int32 = -128
)

// ParsePrincipal splits "HTTP/web.lab.local@LAB.LOCAL" into a name and realm
// (realm "" when absent). "\@" and "\/" escapes are honoured (RFC 1964 §2.1.1).
func ParsePrincipal(s string) (types.PrincipalName, string) {
	var comps []string
	var cur strings.Builder
	realm := ""
	inRealm := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			cur.WriteByte(s[i])
			continue
		}
		switch {
		case c == '@' && !inRealm:
			comps = append(comps, cur.String())
			cur.Reset()
			inRealm = true
		case c == '/' && !inRealm:
			comps = append(comps, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if inRealm {
		realm = cur.String()
	} else {
		comps = append(comps, cur.String())
	}
	nt := NTPrincipal
	if len(comps) > 1 {
		nt = NTSrvInst
	}
	return types.PrincipalName{NameType: nt, NameString: comps}, realm
}

// PrincipalString renders name@realm (realm omitted when empty).
func PrincipalString(pn types.PrincipalName, realm string) string {
	s := strings.Join(pn.NameString, "/")
	if realm != "" {
		s += "@" + realm
	}
	return s
}

// SameName compares name strings, ignoring the name type, as AD's KDC does for
// service lookups (notes: FreeTDS sends type 1, Impacket type 2).
func SameName(a, b types.PrincipalName) bool {
	if len(a.NameString) != len(b.NameString) {
		return false
	}
	for i := range a.NameString {
		if !strings.EqualFold(a.NameString[i], b.NameString[i]) {
			return false
		}
	}
	return true
}

// KerberosTime truncates t to whole seconds in UTC (RFC 4120 §5.2.3; gofork
// would otherwise write a zone offset for non-UTC times).
func KerberosTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// Ticket flag and KDC option bit numbers (RFC 4120 §5.3, §5.4.1; MS-SFU 2.2.x).
const (
	FlagForwardable    = 1
	FlagForwarded      = 2
	FlagProxiable      = 3
	FlagProxy          = 4
	FlagMayPostdate    = 5
	FlagPostdated      = 6
	FlagInvalid        = 7
	FlagRenewable      = 8
	FlagInitial        = 9
	FlagPreAuthent     = 10
	FlagHWAuthent      = 11
	FlagTransitChecked = 12
	FlagOKAsDelegate   = 13
	FlagEncPARep       = 15 // ticket flag: enc-pa-rep (RFC 6806)
	FlagNameCanon      = 15 // same bit as ticket flag; in KDC options it is "canonicalize"

	OptCNameInAddlTkt = 14 // MS-SFU 2.2.x: S4U2Proxy
	OptCanonicalize   = 15
	OptDisableTransit = 26
	OptRenewableOK    = 27
	OptEncTktInSKey   = 28
	OptRenew          = 30
	OptValidate       = 31
)

var flagNames = []struct {
	bit  int
	name string
}{
	{FlagForwardable, "forwardable"}, {FlagForwarded, "forwarded"}, {FlagProxiable, "proxiable"},
	{FlagProxy, "proxy"}, {FlagMayPostdate, "may-postdate"}, {FlagPostdated, "postdated"},
	{FlagInvalid, "invalid"}, {FlagRenewable, "renewable"}, {FlagInitial, "initial"},
	{FlagPreAuthent, "pre-authent"}, {FlagHWAuthent, "hw-authent"}, {FlagTransitChecked, "transited-policy-checked"},
	{FlagOKAsDelegate, "ok-as-delegate"}, {FlagNameCanon, "name-canonicalize"},
}

// NewFlags returns an empty 32-bit KerberosFlags value.
func NewFlags(bits ...int) asn1.BitString {
	f := asn1.BitString{Bytes: make([]byte, 4), BitLength: 32}
	for _, b := range bits {
		SetFlag(&f, b)
	}
	return f
}

// SetFlag sets bit i (0 = most significant), growing short bit strings.
func SetFlag(f *asn1.BitString, i int) {
	if i < 0 || i > 31 {
		return
	}
	for len(f.Bytes) < 4 {
		f.Bytes = append(f.Bytes, 0)
	}
	if f.BitLength < 32 {
		f.BitLength = 32
	}
	f.Bytes[i/8] |= 0x80 >> uint(i%8)
}

// ClearFlag clears bit i.
func ClearFlag(f *asn1.BitString, i int) {
	if i < 0 || i/8 >= len(f.Bytes) {
		return
	}
	f.Bytes[i/8] &^= 0x80 >> uint(i%8)
}

// HasFlag reports bit i, false for bits beyond a short bit string (gokrb5's
// IsFlagSet panics there, notes §5.1).
func HasFlag(f asn1.BitString, i int) bool {
	if i < 0 || i/8 >= len(f.Bytes) || i >= f.BitLength {
		return false
	}
	return f.Bytes[i/8]&(0x80>>uint(i%8)) != 0
}

// CopyFlags returns an independent copy of f, at least 32 bits long.
func CopyFlags(f asn1.BitString) asn1.BitString {
	c := NewFlags()
	copy(c.Bytes, f.Bytes)
	return c
}

// FlagNames lists the ticket flags that are set, as klist -f names them.
func FlagNames(f asn1.BitString) []string {
	var out []string
	for _, fl := range flagNames {
		if HasFlag(f, fl.bit) {
			out = append(out, fl.name)
		}
	}
	return out
}

// FlagLetters renders flags as MIT klist -f does (F f P p D d R I A H T O a).
func FlagLetters(f asn1.BitString) string {
	letters := []struct {
		bit int
		l   byte
	}{{FlagForwardable, 'F'}, {FlagForwarded, 'f'}, {FlagProxiable, 'P'}, {FlagProxy, 'p'},
		{FlagMayPostdate, 'D'}, {FlagPostdated, 'd'}, {FlagRenewable, 'R'}, {FlagInitial, 'I'},
		{FlagInvalid, 'i'}, {FlagHWAuthent, 'H'}, {FlagPreAuthent, 'A'}, {FlagTransitChecked, 'T'},
		{FlagOKAsDelegate, 'O'}}
	var b []byte
	for _, x := range letters {
		if HasFlag(f, x.bit) {
			b = append(b, x.l)
		}
	}
	return string(b)
}

// ParsePrincipalName is ParsePrincipal without the realm.
func ParsePrincipalName(s string) types.PrincipalName {
	pn, _ := ParsePrincipal(s)
	return pn
}
