package kdcclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
)

// ServiceLogon is a service account's own logon (the app pool identity's, or
// SQL Server's): it holds the account's TGT, logging on again with the
// strongest key of its keytab when the TGT is within five minutes of its end
// or the keytab changed.
type ServiceLogon struct {
	KDC     *Client
	Account string
	// Keytab returns the current keytab (re-read when it changes on disk).
	Keytab func() (*gokeytab.Keytab, error)
	// Options are the AS-REQ's KDC options (forwardable for S4U2Proxy).
	Options []int

	mu  sync.Mutex
	kt  *gokeytab.Keytab
	tgt *kmsg.Credential
}

// ErrNoKey is a keytab that holds no key of the account (another account's
// keytab, exported by mistake).
var ErrNoKey = errors.New("the keytab holds no key for the account")

// TGT returns the account's TGT.
func (l *ServiceLogon) TGT(ctx context.Context) (kmsg.Credential, error) {
	kt, err := l.Keytab()
	if err != nil {
		return kmsg.Credential{}, err
	}
	l.mu.Lock()
	if l.tgt != nil && l.kt == kt && l.KDC.now().Add(5*time.Minute).Before(l.tgt.Info.EndTime) {
		c := *l.tgt
		l.mu.Unlock()
		return c, nil
	}
	l.mu.Unlock()
	key, kvno, ok := keytab.Strongest(kt, l.Account)
	if !ok {
		return kmsg.Credential{}, fmt.Errorf("%w: %s", ErrNoKey, l.Account)
	}
	rep, err := l.KDC.LoginWithKey(ctx, l.Account, key, kvno, l.Options)
	if err != nil {
		return kmsg.Credential{}, fmt.Errorf("logon of %s at the KDC: %w", l.Account, err)
	}
	c := rep.Credential()
	l.mu.Lock()
	l.kt, l.tgt = kt, &c
	l.mu.Unlock()
	return c, nil
}

// Ticket returns a service ticket for spn issued to the account.
func (l *ServiceLogon) Ticket(ctx context.Context, spn string) (kmsg.Credential, error) {
	tgt, err := l.TGT(ctx)
	if err != nil {
		return kmsg.Credential{}, err
	}
	rep, err := l.KDC.ServiceTicket(ctx, tgt, spn)
	if err != nil {
		return kmsg.Credential{}, err
	}
	return rep.Credential(), nil
}
