package directory

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// New accounts as AD makes them (New-ADUser, New-ADServiceAccount-style
// service users, New-ADComputer; dsadd): the next free RID, so a fresh SID;
// a computer gets its HOST SPNs and a random password, as a domain join sets.

// firstRID is where the lab's new accounts start (AD's first RID for
// created objects is 1000 on a fresh domain; the default lab uses 1100+).
const firstRID = 1000

// NewAccount fills in what AD would for a new account of the given type and
// adds it; a computer name gets its trailing $.
func (l *Lab) NewAccount(a Account) (*Account, error) {
	switch a.Type {
	case TypeUser, TypeService:
		if a.Password == "" {
			return nil, fmt.Errorf("a %s needs a password", a.Type)
		}
	case TypeComputer:
		if !strings.HasSuffix(a.Name, "$") {
			a.Name += "$"
		}
		if a.Password == "" {
			b := make([]byte, 90)
			rand.Read(b)
			a.Password = base64.StdEncoding.EncodeToString(b) // a machine password nobody types
		}
		host := strings.ToLower(strings.TrimSuffix(a.Name, "$"))
		a.SPNs = append([]string{"HOST/" + host, "HOST/" + host + "." + strings.ToLower(l.Realm)}, a.SPNs...)
	default:
		return nil, fmt.Errorf("account type %q: user, service or computer", a.Type)
	}
	if a.Name == "" || strings.ContainsAny(a.Name, `/\@ `) {
		return nil, fmt.Errorf("account name %q is not a sAMAccountName", a.Name)
	}
	if l.Account(a.Name) != nil {
		return nil, fmt.Errorf("an account named %s already exists", a.Name)
	}
	for _, spn := range a.SPNs {
		if owner := l.spnOwner(spn); owner != "" {
			return nil, fmt.Errorf("%w (%s is held by %s)", ErrDuplicateSPN, spn, owner)
		}
	}
	next := uint32(firstRID)
	for _, x := range l.Accounts {
		if x.RID >= next {
			next = x.RID + 1
		}
	}
	a.RID = next
	if len(a.Groups) == 0 {
		a.Groups = []string{"Domain Users"}
		if a.Type == TypeComputer {
			a.Groups = []string{"Domain Computers"}
		}
	}
	l.Accounts = append(l.Accounts, a)
	return &l.Accounts[len(l.Accounts)-1], nil
}

// RemoveAccount deletes an account and every reference to it (RBCD lists).
func (l *Lab) RemoveAccount(name string) error {
	for i := range l.Accounts {
		if !strings.EqualFold(l.Accounts[i].Name, name) {
			continue
		}
		if l.Accounts[i].Type == TypeKrbtgt {
			return fmt.Errorf("the krbtgt account cannot be removed")
		}
		for _, h := range l.Hosts {
			if strings.EqualFold(h.Account, name) || strings.EqualFold(h.RunsAs, name) {
				return fmt.Errorf("%s is in use by host %s", name, h.Name)
			}
		}
		l.Accounts = append(l.Accounts[:i], l.Accounts[i+1:]...)
		for j := range l.Accounts {
			var keep []string
			for _, x := range l.Accounts[j].AllowedToActOnBehalfOf {
				if !strings.EqualFold(x, name) {
					keep = append(keep, x)
				}
			}
			l.Accounts[j].AllowedToActOnBehalfOf = keep
		}
		return nil
	}
	return fmt.Errorf("no account %s", name)
}

// spnOwner names the account holding spn (case-insensitive), or "".
func (l *Lab) spnOwner(spn string) string {
	for _, a := range l.Accounts {
		for _, s := range a.SPNs {
			if normSPN(s) == normSPN(spn) {
				return a.Name
			}
		}
	}
	return ""
}
