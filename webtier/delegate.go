package webtier

import (
	"context"
	"errors"
	"fmt"

	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gofork/encoding/asn1"
)

// Mechanisms the page reports for the second hop.
const (
	MechUnconstrained      = "unconstrained (forwarded TGT)"
	MechConstrained        = "constrained (S4U2Proxy)"
	MechProtocolTransition = "protocol transition (S4U2Self + S4U2Proxy)"
	MechOwnIdentity        = "the site's own identity"
	MechNone               = "none (no delegable credential)"
)

// sqlCredential is what the web tier can present to SQL Server for a request.
type sqlCredential struct {
	mechanism string
	cred      *kmsg.Credential // service ticket for MSSQLSvc; nil = anonymous
	kdcErr    error            // why the KDC refused a delegable credential
	steps     []string         // human-readable steps for the page
	calls     []KDCRequest     // what the site asked the DC, for the picture
}

// call records one request to the DC.
func call(what string, err error) KDCRequest {
	r := KDCRequest{From: "web", What: what, OK: err == nil}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		r.Error = ke.Code.Name()
	} else if err != nil {
		r.Error = "unreachable"
	}
	return r
}

// delegate obtains a ticket to spn for the user, the way Windows' LSA does for
// an impersonated thread: a forwarded TGT if the client sent one, otherwise
// S4U2Proxy with the user's ticket as evidence (protocol transition first for
// form logins). A refusal leaves no delegable credential: the connection then
// goes out anonymously (NTLM with no credentials), the double-hop symptom.
func (s *Server) delegate(ctx context.Context, id identity, spn string) sqlCredential {
	if id.ctx != nil && id.ctx.Delegated != nil {
		d := *id.ctx.Delegated
		rep, err := s.kdc.ServiceTicket(ctx, d, spn, kmsg.FlagForwardable)
		calls := []KDCRequest{call("TGS-REQ "+spn+" with "+id.user+"'s TGT", err)}
		if err != nil {
			return sqlCredential{mechanism: MechNone, kdcErr: err, calls: calls,
				steps: []string{"TGS-REQ for " + spn + " with " + id.user + "'s forwarded TGT: " + errText(err)}}
		}
		c := rep.Credential()
		return sqlCredential{mechanism: MechUnconstrained, cred: &c, calls: calls,
			steps: []string{id.user + "'s client forwarded a TGT in the authenticator's GSS checksum (KRB-CRED)", "TGS-REQ as " + id.user + " for " + spn + ": ok"}}
	}
	own, err := s.ownTGT(ctx)
	if err != nil {
		return sqlCredential{mechanism: MechNone, kdcErr: err, calls: []KDCRequest{call("AS-REQ "+s.cfg.ServiceAccount, err)},
			steps: []string{"logon of " + s.cfg.ServiceAccount + " failed: " + errText(err)}}
	}
	var steps []string
	var calls []KDCRequest
	var evidence kmsg.Credential
	mech := MechConstrained
	if id.ctx != nil {
		evidence = kmsg.Credential{Ticket: id.ctx.Ticket}
		steps = append(steps, fmt.Sprintf("evidence: %s's ticket to %s (%s)", id.user, id.ctx.Service, flagOrNot(id.ctx.Flags)))
	} else {
		mech = MechProtocolTransition
		rep, err := s.kdc.S4U2Self(ctx, own, id.user)
		calls = append(calls, call("S4U2Self for "+id.user, err))
		if err != nil {
			return sqlCredential{mechanism: MechNone, kdcErr: err, calls: calls, steps: []string{"S4U2Self for " + id.user + ": " + errText(err)}}
		}
		evidence = rep.Credential()
		steps = append(steps, fmt.Sprintf("S4U2Self: a ticket to %s for %s (%s)", s.cfg.ServiceAccount, id.user, flagOrNot(evidence.Info.Flags)))
	}
	rep, err := s.kdc.S4U2Proxy(ctx, own, evidence, spn)
	calls = append(calls, call("S4U2Proxy "+spn, err))
	if err != nil {
		steps = append(steps, "S4U2Proxy to "+spn+": "+errText(err))
		return sqlCredential{mechanism: MechNone, kdcErr: err, steps: steps, calls: calls}
	}
	c := rep.Credential()
	steps = append(steps, "S4U2Proxy to "+spn+": ok ("+flagOrNot(c.Info.Flags)+")")
	return sqlCredential{mechanism: mech, cred: &c, steps: steps, calls: calls}
}

// ownCredential is a ticket to spn as the service account (impersonation off).
func (s *Server) ownCredential(ctx context.Context, spn string) sqlCredential {
	own, err := s.ownTGT(ctx)
	if err != nil {
		return sqlCredential{mechanism: MechNone, kdcErr: err, steps: []string{"logon of " + s.cfg.ServiceAccount + " failed: " + errText(err)}}
	}
	rep, err := s.kdc.ServiceTicket(ctx, own, spn)
	calls := []KDCRequest{call("TGS-REQ "+spn+" as "+s.cfg.ServiceAccount, err)}
	if err != nil {
		return sqlCredential{mechanism: MechNone, kdcErr: err, calls: calls, steps: []string{"TGS-REQ for " + spn + ": " + errText(err)}}
	}
	c := rep.Credential()
	return sqlCredential{mechanism: MechOwnIdentity, cred: &c, calls: calls, steps: []string{"impersonation is off: the site uses " + s.cfg.ServiceAccount + "'s own ticket"}}
}

func flagOrNot(f asn1.BitString) string {
	if kmsg.HasFlag(f, kmsg.FlagForwardable) {
		return "forwardable"
	}
	return "not forwardable"
}

// errText renders KDC errors with their code.
func errText(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		s := ke.Code.String()
		if st := ke.StatusString(); st != "" {
			s += " " + st
		}
		if ke.Text != "" {
			s += ": " + ke.Text
		}
		return s
	}
	return err.Error()
}
