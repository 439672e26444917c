package directory

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/ntstatus"
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
	// AD refuses " / \ [ ] : ; | = , + * ? < > in a sAMAccountName (MS-SAMR
	// 3.1.1.6); '@' is allowed (Samba's salt tests use it).
	if a.Name == "" || strings.ContainsAny(a.Name, `"/\[]:;|=,+*?<> `) {
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
	for _, g := range l.Groups { // accounts and groups share the domain's RIDs
		if g.RID >= next {
			next = g.RID + 1
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

// Logon restrictions the KDC and the DC's NTLM check apply (MS-KILE 3.3.5.7.1,
// MS-APDS 3.1.5): the reason, the NTSTATUS Windows reports and its text.
type Restriction struct {
	Reason string
	Status ntstatus.Status
	Text   string
}

// LockoutForever is a lockout duration of "until an administrator unlocks
// the account" (AD's lockoutDuration 0).
const LockoutForever = Duration(-1)

// LockoutDuration and LockoutWindow with AD's defaults.
func (p Policy) lockout() (time.Duration, time.Duration) {
	d, w := p.LockoutDuration.D(), p.LockoutWindow.D()
	switch {
	case d == 0:
		d = 30 * time.Minute
	case d < 0:
		d = 100 * 365 * 24 * time.Hour
	}
	if w == 0 {
		w = 30 * time.Minute
	}
	return d, w
}

// LockedNow reports an account locked out at now (lockoutTime + duration).
func (a *Account) LockedNow(p Policy, now time.Time) bool {
	d, _ := p.lockout()
	return !a.LockedOut.IsZero() && now.Before(a.LockedOut.Add(d))
}

// BeforePassword is what stops a logon before the password is checked:
// disabled, locked out, expired, outside the logon hours.
func (a *Account) BeforePassword(p Policy, now time.Time) *Restriction {
	switch {
	case a.Disabled:
		return &Restriction{"DISABLED", ntstatus.AccountDisabled, "account " + a.Name + " is disabled"}
	case a.LockedNow(p, now):
		d, _ := p.lockout()
		return &Restriction{"LOCKED_OUT", ntstatus.AccountLockedOut, fmt.Sprintf("account %s is locked out until %s", a.Name, a.LockedOut.Add(d).UTC().Format(time.DateTime))}
	case !a.Expires.IsZero() && !now.Before(a.Expires):
		return &Restriction{"ACCOUNT_EXPIRED", ntstatus.AccountExpired, "account " + a.Name + " expired on " + a.Expires.UTC().Format(time.DateTime)}
	case !a.inLogonHours(now):
		return &Restriction{"LOGON_HOURS", ntstatus.InvalidLogonHours, fmt.Sprintf("account %s may not log on at %02d:00 UTC (logon hours %s)", a.Name, now.UTC().Hour(), a.LogonHours)}
	}
	return nil
}

// AfterPassword is what stops a logon with the right password: it must be
// changed first (KDC_ERR_KEY_EXPIRED).
func (a *Account) AfterPassword() *Restriction {
	switch {
	case a.MustChangePassword:
		return &Restriction{"PASSWORD_MUST_CHANGE", ntstatus.PasswordMustChange, "the password of " + a.Name + " must be changed at next logon"}
	case a.PasswordExpired:
		return &Restriction{"PASSWORD_EXPIRED", ntstatus.PasswordExpired, "the password of " + a.Name + " has expired"}
	}
	return nil
}

func (a *Account) inLogonHours(now time.Time) bool {
	switch a.LogonHours {
	case "":
		return true
	case "none":
		return false
	}
	var from, to int
	if _, err := fmt.Sscanf(a.LogonHours, "%d-%d", &from, &to); err != nil {
		return true // Validate refuses such values; a bad one does not lock anyone out
	}
	h := now.UTC().Hour()
	if from <= to {
		return h >= from && h < to
	}
	return h >= from || h < to // across midnight
}

// BadPassword records a failed pre-authentication (badPwdCount, 4771 0x18)
// and reports whether it locked the account (4740).
func (a *Account) BadPassword(p Policy, now time.Time) (lockedNow bool) {
	_, w := p.lockout()
	if a.BadPwdTime.IsZero() || now.Sub(a.BadPwdTime) > w {
		a.BadPwdCount = 0 // outside the observation window: counting starts again
	}
	a.BadPwdCount++
	a.BadPwdTime = now
	if p.LockoutThreshold > 0 && a.BadPwdCount >= p.LockoutThreshold && !a.LockedNow(p, now) {
		a.LockedOut = now
		return true
	}
	return false
}

// Unlock clears the lockout (Unlock-ADAccount).
func (a *Account) Unlock() {
	a.LockedOut, a.BadPwdCount, a.BadPwdTime = time.Time{}, 0, time.Time{}
}

// NewGroup adds a domain group with the next free RID.
func (l *Lab) NewGroup(name string) (*Group, error) {
	if name == "" || strings.ContainsAny(name, `"/\[]:;|=,+*?<>`) {
		return nil, fmt.Errorf("group name %q is not a sAMAccountName", name)
	}
	if _, ok := wellKnownGroups[strings.ToLower(name)]; ok || l.Account(name) != nil {
		return nil, fmt.Errorf("a group or account named %s already exists", name)
	}
	next := uint32(firstRID)
	for _, g := range l.Groups {
		if strings.EqualFold(g.Name, name) {
			return nil, fmt.Errorf("a group named %s already exists", name)
		}
		if g.RID >= next {
			next = g.RID + 1
		}
	}
	for _, a := range l.Accounts {
		if a.RID >= next {
			next = a.RID + 1
		}
	}
	l.Groups = append(l.Groups, Group{Name: name, RID: next})
	return &l.Groups[len(l.Groups)-1], nil
}

// RemoveGroup deletes a lab group and every membership of it.
func (l *Lab) RemoveGroup(name string) error {
	for i, g := range l.Groups {
		if strings.EqualFold(g.Name, name) {
			l.Groups = append(l.Groups[:i], l.Groups[i+1:]...)
			for j := range l.Accounts {
				a := &l.Accounts[j]
				for k, x := range a.Groups {
					if strings.EqualFold(x, name) {
						a.Groups = append(a.Groups[:k], a.Groups[k+1:]...)
						break
					}
				}
			}
			return nil
		}
	}
	return fmt.Errorf("no group %s (well-known groups cannot be removed)", name)
}
