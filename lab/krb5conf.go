package lab

import (
	"fmt"
	"strings"
)

// Krb5Conf renders a krb5.conf for MIT tools and for the lab's own clients:
// no DNS, no reverse lookups, forwardable TGTs (as Windows clients request
// them), AES only unless the lab allows RC4.
func Krb5Conf(realm, kdcAddr, ccache string, allowRC4 bool) string {
	enctypes := "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96"
	if allowRC4 {
		enctypes += " arcfour-hmac"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# written by doublehop: realm %s\n[libdefaults]\n", realm)
	fmt.Fprintf(&b, "    default_realm = %s\n", realm)
	b.WriteString("    dns_lookup_kdc = false\n    dns_lookup_realm = false\n    dns_canonicalize_hostname = false\n    rdns = false\n")
	b.WriteString("    forwardable = true\n    ticket_lifetime = 10h\n    renew_lifetime = 7d\n    udp_preference_limit = 1465\n")
	fmt.Fprintf(&b, "    default_tkt_enctypes = %s\n    default_tgs_enctypes = %s\n    permitted_enctypes = %s\n", enctypes, enctypes, enctypes)
	if allowRC4 {
		b.WriteString("    allow_weak_crypto = true\n")
	}
	if ccache != "" {
		fmt.Fprintf(&b, "    default_ccache_name = FILE:%s\n", ccache)
	}
	fmt.Fprintf(&b, "\n[realms]\n    %s = {\n        kdc = %s\n    }\n", realm, kdcAddr)
	domain := strings.ToLower(realm)
	fmt.Fprintf(&b, "\n[domain_realm]\n    .%s = %s\n    %s = %s\n", domain, realm, domain, realm)
	return b.String()
}
