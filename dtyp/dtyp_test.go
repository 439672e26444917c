package dtyp

import (
	"encoding/hex"
	"testing"
)

// The RBCD descriptor: self-relative, owner BUILTIN\Administrators right
// after the header, the DACL after it, one ACCESS_ALLOWED ACE per account.
// (impacket's rbcd.py writing one and our reader parsing it is in ldap's tests.)
func TestRBCDDescriptorRoundTrip(t *testing.T) {
	s, err := ParseSID("S-1-5-21-3623811015-3361044348-30300820-1119")
	if err != nil {
		t.Fatal(err)
	}
	b := RBCDDescriptor([]SID{s})
	// revision 1, control 0x8004, owner at 20, no group, no SACL, DACL at 36.
	if hdr := hex.EncodeToString(b[:20]); hdr != "0100048014000000000000000000000024000000" {
		t.Fatalf("header %s", hdr)
	}
	sd, err := ParseSecurityDescriptor(b)
	if err != nil {
		t.Fatal(err)
	}
	got := sd.AllowedSIDs()
	if len(got) != 1 || got[0].String() != s.String() || sd.Owner.String() != "S-1-5-32-544" {
		t.Fatalf("parsed %+v", sd)
	}
}

func FuzzParseSecurityDescriptor(f *testing.F) {
	s, _ := ParseSID("S-1-5-21-1-2-3-1105")
	f.Add(RBCDDescriptor([]SID{s, s}))
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := ParseSecurityDescriptor(b)
		if err != nil {
			return
		}
		if _, err := ParseSecurityDescriptor(sd.Marshal()); err != nil {
			t.Fatalf("re-marshalled descriptor does not parse: %v", err)
		}
	})
}
