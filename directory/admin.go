package directory

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// DN renders an account's distinguished name as AD tools print it.
func (l *Lab) DN(a *Account) string {
	if a.DN != "" {
		return a.DN
	}
	var dc []string
	for _, p := range strings.Split(strings.ToLower(l.Realm), ".") {
		dc = append(dc, "DC="+p)
	}
	container := "CN=Users"
	switch a.Type {
	case TypeComputer:
		container = "CN=Computers"
		if a.InGroup("Domain Controllers") {
			container = "OU=Domain Controllers"
		}
	case TypeService:
		container = "OU=SVC_Accounts"
	}
	return fmt.Sprintf("CN=%s,%s,%s", strings.TrimSuffix(a.Name, "$"), container, strings.Join(dc, ","))
}

func (l *Lab) domainDN() string {
	var dc []string
	for _, p := range strings.Split(strings.ToLower(l.Realm), ".") {
		dc = append(dc, "DC="+p)
	}
	return strings.Join(dc, ",")
}

// ErrDuplicateSPN is setspn -S refusing an SPN another account already holds.
var ErrDuplicateSPN = errors.New("Duplicate SPN found, aborting operation!")

// SetSPN runs one setspn command with the verbs and output of Windows'
// setspn.exe: -S (add after a forest-wide duplicate check), -A (add without
// the check, as setspn before Windows Server 2008 did), -D, -L, -Q, -X.
func SetSPN(s *Store, args []string, w io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: setspn -S|-A|-D <spn> <account> | -L <account> | -Q <spn> | -X")
	}
	verb := strings.ToUpper(args[0])
	need := func(n int) error {
		if len(args) != n+1 {
			return fmt.Errorf("setspn %s: expected %d argument(s)", args[0], n)
		}
		return nil
	}
	switch verb {
	case "-S", "-A":
		if err := need(2); err != nil {
			return err
		}
		return addSPN(s, args[1], args[2], verb == "-S", w)
	case "-D":
		if err := need(2); err != nil {
			return err
		}
		return deleteSPN(s, args[1], args[2], w)
	case "-L":
		if err := need(1); err != nil {
			return err
		}
		v := s.View()
		e, ok := v.Account(args[1])
		if !ok {
			return fmt.Errorf("FindDomainForAccount: Call to DsGetDcNameWithAccountW failed with return value 0x00000525\nUnable to locate account %s", args[1])
		}
		fmt.Fprintf(w, "Registered ServicePrincipalNames for %s:\n", v.Lab.DN(e.Account))
		for _, spn := range e.SPNs {
			fmt.Fprintf(w, "\t%s\n", spn)
		}
		return nil
	case "-Q":
		if err := need(1); err != nil {
			return err
		}
		v := s.View()
		fmt.Fprintf(w, "Checking domain %s\n", v.Lab.domainDN())
		owners := v.SPNOwners(args[1])
		if len(owners) == 0 {
			fmt.Fprintln(w, "\nNo such SPN found.")
			return ErrNoSuchSPN
		}
		for _, e := range owners {
			fmt.Fprintln(w, v.Lab.DN(e.Account))
			for _, spn := range e.SPNs {
				fmt.Fprintf(w, "\t%s\n", spn)
			}
		}
		fmt.Fprintln(w, "\nExisting SPN found!")
		return nil
	case "-X":
		v := s.View()
		fmt.Fprintf(w, "Checking domain %s\nProcessing entry 0\n", v.Lab.domainDN())
		d := v.Duplicates()
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s is registered on these accounts:\n", spnAsRegistered(v, k))
			for _, n := range d[k] {
				e, _ := v.Account(n)
				fmt.Fprintf(w, "\t%s\n", v.Lab.DN(e.Account))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "found %d group of duplicate SPNs.\n", len(d))
		return nil
	}
	return fmt.Errorf("setspn: unknown switch %s (use -S, -A, -D, -L, -Q, -X)", args[0])
}

// ErrNoSuchSPN is setspn -Q finding nothing.
var ErrNoSuchSPN = errors.New("No such SPN found.")

func spnAsRegistered(v *View, k string) string {
	for _, e := range v.SPNOwners(k) {
		for _, s := range e.SPNs {
			if normSPN(s) == k {
				return s
			}
		}
	}
	return k
}

func addSPN(s *Store, spn, account string, check bool, w io.Writer) error {
	spn = strings.TrimSpace(spn)
	if !strings.Contains(spn, "/") {
		return fmt.Errorf("setspn: %q is not a service principal name (class/host[:port])", spn)
	}
	var dn string
	_, err := s.Update(func(l *Lab) error {
		a := l.Account(account)
		if a == nil {
			return fmt.Errorf("FindDomainForAccount: Call to DsGetDcNameWithAccountW failed with return value 0x00000525\nUnable to locate account %s", account)
		}
		dn = l.DN(a)
		if check {
			fmt.Fprintf(w, "Checking domain %s\n", l.domainDN())
			for i := range l.Accounts {
				o := &l.Accounts[i]
				for _, x := range o.SPNs {
					if normSPN(x) == normSPN(spn) {
						if o == a {
							fmt.Fprintf(w, "Registering ServicePrincipalNames for %s\n\t%s\nDuplicate SPN found, aborting operation!\n", dn, spn)
						} else {
							fmt.Fprintf(w, "%s\n\t%s\n\n", l.DN(o), x)
						}
						return ErrDuplicateSPN
					}
				}
			}
		}
		for _, x := range a.SPNs {
			if normSPN(x) == normSPN(spn) {
				return fmt.Errorf("the SPN %s is already registered on %s", spn, a.Name)
			}
		}
		a.SPNs = append(a.SPNs, spn)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrDuplicateSPN) {
			fmt.Fprintln(w, ErrDuplicateSPN.Error())
		}
		return err
	}
	fmt.Fprintf(w, "Registering ServicePrincipalNames for %s\n\t%s\nUpdated object\n", dn, spn)
	return nil
}

func deleteSPN(s *Store, spn, account string, w io.Writer) error {
	var dn string
	_, err := s.Update(func(l *Lab) error {
		a := l.Account(account)
		if a == nil {
			return fmt.Errorf("Unable to locate account %s", account)
		}
		dn = l.DN(a)
		for i, x := range a.SPNs {
			if normSPN(x) == normSPN(spn) {
				a.SPNs = append(a.SPNs[:i], a.SPNs[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("Unregistering ServicePrincipalNames for %s\n\t%s\nFailed to remove SPN from account %s: not registered", dn, spn, dn)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Unregistering ServicePrincipalNames for %s\n\t%s\nUpdated object\n", dn, spn)
	return nil
}

// SetPassword resets an account's password; AD bumps msDS-KeyVersionNumber,
// so keytabs exported before hold a stale key.
func SetPassword(s *Store, account, password string) (int, error) {
	kvno := 0
	_, err := s.Update(func(l *Lab) error {
		a := l.Account(account)
		if a == nil {
			return fmt.Errorf("no account %s", account)
		}
		if err := a.SetPassword(password); err != nil {
			return err
		}
		kvno = a.KVNO
		return nil
	})
	return kvno, err
}

// SetPassword gives the account a new password: new keys, the kvno one up.
func (a *Account) SetPassword(password string) error {
	if password == "" {
		return fmt.Errorf("empty password")
	}
	a.Password = password
	a.MustChangePassword, a.PasswordExpired = false, false // a new password (pwdLastSet = now)
	a.KVNO++
	return nil
}

// Modify applies a change to one account.
func Modify(s *Store, account string, f func(l *Lab, a *Account) error) error {
	_, err := s.Update(func(l *Lab) error {
		a := l.Account(account)
		if a == nil {
			return fmt.Errorf("no account %s", account)
		}
		return f(l, a)
	})
	return err
}

// RecordBadPassword counts a wrong password against the account (badPwdCount,
// MS-ADTS 3.1.1.5.x) and reports whether it locked the account just now, at
// the domain's lockout threshold (the caller logs 4740).
func RecordBadPassword(s *Store, account string, now time.Time) bool {
	locked := false
	Modify(s, account, func(l *Lab, a *Account) error {
		locked = a.BadPassword(l.Policy, now)
		return nil
	})
	return locked
}
