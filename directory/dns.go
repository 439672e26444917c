package directory

import (
	"fmt"
	"net"
	"strings"
)

// The domain's DNS zone, as an AD-integrated zone holds it on the DC: every
// host's A record (Host.Address), plus the aliases admins add. Which kind an
// alias is decides the SPN a Windows browser asks for: it follows a CNAME to
// the canonical name (HTTP/web.lab.local), but an A record is a name of its
// own (HTTP/intranet.lab.local), which needs its own SPN.

// DNS record types the lab knows.
const (
	RecordA     = "A"
	RecordCNAME = "CNAME"
)

// DNSRecord is one alias in the zone.
type DNSRecord struct {
	Name   string `yaml:"name"`   // intranet.lab.local
	Type   string `yaml:"type"`   // A or CNAME
	Target string `yaml:"target"` // an address (A) or a host name (CNAME)
}

// maxCNAMEChain bounds alias chains (resolvers stop long chains too).
const maxCNAMEChain = 8

func (l *Lab) record(name string) *DNSRecord {
	for i := range l.DNS {
		if strings.EqualFold(l.DNS[i].Name, name) {
			return &l.DNS[i]
		}
	}
	return nil
}

func (l *Lab) hostNamed(name string) *Host {
	for i := range l.Hosts {
		if strings.EqualFold(l.Hosts[i].Name, name) || strings.EqualFold(l.Hosts[i].Short, name) {
			return &l.Hosts[i]
		}
	}
	return nil
}

// Canonical is the name a CNAME chain from name ends at; name itself for
// hosts, A records and names the zone does not hold.
func (l *Lab) Canonical(name string) string {
	cur := name
	for i := 0; i < maxCNAMEChain; i++ {
		r := l.record(cur)
		if r == nil || !strings.EqualFold(r.Type, RecordCNAME) {
			return cur
		}
		cur = r.Target
	}
	return cur
}

// Machine is the lab host that answers for name: a host's name or short
// name, its address, an alias (A or CNAME) that leads to it.
func (l *Lab) Machine(name string) (*Host, bool) {
	cur := l.Canonical(name)
	if r := l.record(cur); r != nil && strings.EqualFold(r.Type, RecordA) {
		cur = r.Target
	}
	if h := l.hostNamed(cur); h != nil {
		return h, true
	}
	if ip := net.ParseIP(cur); ip != nil {
		for i := range l.Hosts {
			if a := net.ParseIP(l.Hosts[i].Address); a != nil && a.Equal(ip) {
				return &l.Hosts[i], true
			}
		}
	}
	return nil, false
}

// AddDNS adds an alias (dnscmd /recordadd; Add-DnsServerResourceRecord).
func (l *Lab) AddDNS(r DNSRecord) error {
	r.Type = strings.ToUpper(r.Type)
	r.Name, r.Target = strings.ToLower(strings.TrimSuffix(r.Name, ".")), strings.TrimSuffix(r.Target, ".")
	switch {
	case r.Name == "" || r.Target == "":
		return fmt.Errorf("dns: a record needs a name and a target")
	case l.hostNamed(r.Name) != nil || l.record(r.Name) != nil:
		return fmt.Errorf("dns: %s already exists in the zone", r.Name)
	case r.Type == RecordA && net.ParseIP(r.Target) == nil:
		if h := l.hostNamed(r.Target); h != nil && h.Address != "" {
			r.Target = h.Address // "A web" means web's address
		} else {
			return fmt.Errorf("dns: an A record points at an address (or a host with one), not %q", r.Target)
		}
	case r.Type == RecordCNAME && net.ParseIP(r.Target) != nil:
		return fmt.Errorf("dns: a CNAME points at a name, not an address")
	case r.Type != RecordA && r.Type != RecordCNAME:
		return fmt.Errorf("dns: record type %q (A or CNAME)", r.Type)
	}
	l.DNS = append(l.DNS, r)
	return nil
}

// RemoveDNS removes an alias.
func (l *Lab) RemoveDNS(name string) error {
	for i := range l.DNS {
		if strings.EqualFold(l.DNS[i].Name, name) {
			l.DNS = append(l.DNS[:i], l.DNS[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("dns: no record %s", name)
}

// ZoneResolver answers name lookups from the zone as it is now, so an alias
// an admin adds applies to the next request (a workstation's DNS client).
type ZoneResolver struct{ Lab func() *Lab }

// Canonical follows CNAMEs.
func (z ZoneResolver) Canonical(name string) string { return z.Lab().Canonical(name) }

// Machine is the host name that answers for name.
func (z ZoneResolver) Machine(name string) (string, bool) {
	if h, ok := z.Lab().Machine(name); ok {
		return h.Name, true
	}
	return "", false
}
