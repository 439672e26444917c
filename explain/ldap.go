package explain

import (
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/events"
)

// The DC's LDAP face: a bind the DC refused for how it was made, a write
// refused for who made it or for a duplicate SPN. These are failures of a
// tool's own hop to the DC (ldapsearch, LDP, impacket), not of Bob's page:
// the family speaks only when the latest failure is one of them.
func ldapRefusal(in Input, fail events.Event) (Diagnosis, bool) {
	e := fail
	switch {
	case e.ID == events.LogonFailure && strings.HasPrefix(e.Service, "ldap/") && (e.Reason == "SIGNING_REQUIRED" || e.Reason == "STRONGER_AUTH_REQUIRED"):
	case e.ID == events.ObjectOperation && e.Reason == "INSUFF_ACCESS_RIGHTS":
	case e.ID == events.SPNNotUnique:
	default:
		return Diagnosis{}, false
	}
	d := Diagnosis{Hop: "tool → dc (LDAP)", Evidence: []events.Event{e}}
	switch {
	case e.Reason == "SIGNING_REQUIRED":
		d.ID = "ldap-signing-required"
		d.Summary = fmt.Sprintf("the DC requires LDAP signing and %s bound without it: strongerAuthRequired (8)", user(e.Client))
		d.Why = "With \"LDAP server signing requirements = Require signing\" (Windows Server 2025's default) a DC refuses any bind that negotiates no integrity on a connection without TLS (SASL GSSAPI's layer, RFC 4752; GSS-SPNEGO's integrity flag; NTLM's NEGOTIATE_SIGN), and logs 2889."
		d.Fix = []string{cmd("policy", "set", "ldap_signing_required=false")}
		d.Note = "better: keep the requirement and bind with signing (ldapsearch -Y GSSAPI, LDAPS on 636, impacket's LDAPS fallback); the fix above lowers the domain's protection against NTLM relay"
	case e.Reason == "STRONGER_AUTH_REQUIRED":
		d.ID = "ldap-simple-bind-in-clear"
		d.Summary = fmt.Sprintf("%s sent a password in a simple bind without TLS, which the DC refuses: strongerAuthRequired (8)", e.Client)
		d.Why = "A simple bind carries the password in clear text (RFC 4513 §5.1.2); the DC takes it only inside TLS (StartTLS or LDAPS) unless the domain allows it."
		d.Fix = []string{cmd("policy", "set", "ldap_simple_bind_in_clear=true")}
		d.Note = "better: keep it refused and use StartTLS (ldapsearch -ZZ) or LDAPS, or a Kerberos bind (-Y GSSAPI); the fix above is INSECURE"
	case e.ID == events.ObjectOperation:
		d.ID = "ldap-insufficient-rights"
		d.Summary = fmt.Sprintf("%s may read the directory but not write it: insufficientAccessRights (50) on %s", user(e.Client), e.Target)
		d.Why = "Authenticated users read most of the directory; writing another account's SPNs, delegation or password needs the right on the object, which Domain Admins have (MS-ADTS 5.1.3)."
		d.Fix = []string{cmd("client", "kinit", "administrator")}
		d.Note = "then bind again as the administrator (its password is in the lab file)"
	default:
		d.ID = "ldap-duplicate-spn"
		d.Summary = fmt.Sprintf("the SPN written on %s is already another account's: constraintViolation (19, 00002113)", e.Account)
		d.Why = "Since Windows Server 2012 R2 a DC refuses an SPN that another account of the forest holds (MS-ADTS 3.1.1.5.1.3); `setspn -X` lists duplicates that older tools left."
		d.Note = "remove it from the account that holds it first (doublehop setspn -Q SPN names it), or write it where it belongs"
	}
	return d, true
}
