package ntds

import (
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/keytab"
)

// DCAcceptor opens tickets to the DC's own account (ldap/, host/, the
// replication SPN E3514235-...) with the keys the directory holds at each
// call, against one replay cache: what the DC's LDAP and RPC services
// accept Kerberos with.
type DCAcceptor struct {
	directory *directory.Store
	account   string
	now       func() time.Time
	replay    *gss.ReplayCache
}

// NewDCAcceptor makes the acceptor for account (DC$); now may be nil.
func NewDCAcceptor(store *directory.Store, account string, now func() time.Time) *DCAcceptor {
	return &DCAcceptor{directory: store, account: account, now: now, replay: gss.NewReplayCache(store.View().Lab.Policy.MaxSkew.D(), 0)}
}

// Acceptor returns an acceptor with the account's current keys and the
// domain's current clock skew.
func (d *DCAcceptor) Acceptor() (*gss.Acceptor, error) {
	v := d.directory.View()
	entries, err := v.KeytabEntries(d.account)
	if err != nil {
		return nil, err
	}
	kt, err := keytab.Gokrb5(entries)
	if err != nil {
		return nil, err
	}
	skew := v.Lab.Policy.MaxSkew.D()
	d.replay.SetSkew(skew)
	return gss.NewAcceptor(gss.AcceptorConfig{Keytab: kt, Realm: v.Lab.Realm, Now: d.now, MaxSkew: skew, Replay: d.replay}), nil
}
