package directory

import (
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// KeytabEntries returns an account's keys as keytab entries: one per etype for
// the account name and for each SPN it holds (what `ktpass` or `doublehop
// keytab` would export), at the account's current kvno.
func (v *View) KeytabEntries(account string) ([]keytab.Entry, error) {
	e, ok := v.Account(account)
	if !ok {
		return nil, fmt.Errorf("no account %s", account)
	}
	names := [][]string{{e.Name}}
	for _, spn := range e.SPNs {
		names = append(names, strings.Split(spn, "/"))
	}
	now := time.Now().UTC().Truncate(time.Second)
	var out []keytab.Entry
	for _, n := range names {
		nt := kmsg.NTPrincipal
		if len(n) > 1 {
			nt = kmsg.NTSrvInst
		}
		for _, et := range e.ETypes {
			out = append(out, keytab.Entry{Principal: kmsg.Principal{NameType: nt, Components: n, Realm: v.Lab.Realm},
				Timestamp: now, KVNO: uint32(e.KVNO), Key: e.Keys[et]})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("account %s has no usable keys (enctypes %v)", e.Name, e.Enctypes)
	}
	return out, nil
}
