package sqltier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
	"github.com/doublehop/doublehop/sqltier/tds"
)

// NTLM logins (MS-TDS 3.2.5.1, 3.3.5.3): LOGIN7's SSPI field carries the
// NEGOTIATE, the server answers with an SSPI token holding the CHALLENGE, the
// client sends its AUTHENTICATE in an SSPI message (packet type 0x11), and
// SQL Server has the DC validate it (pass-through, MS-APDS over MS-NRPC).
// An anonymous AUTHENTICATE (what a site with no delegable credential sends)
// is the double hop's ANONYMOUS LOGON.

// ntlmValidateTimeout bounds the DC's answer.
const ntlmValidateTimeout = 15 * time.Second

func (s *Server) ntlmConfig() ntlm.ServerConfig {
	return ntlm.MemberServer(s.cfg.NetBIOS, s.cfg.Realm, s.cfg.Host, s.cfg.NTLMComputer, s.cfg.Now)
}

func (s *Server) validator() ntlm.Validator {
	if s.cfg.Validator != nil {
		return s.cfg.Validator
	}
	return ntlm.NoDC("SQL Server")
}

// ntlmLogin runs the handshake that LOGIN7 started.
func (c *conn) ntlmLogin(l *tds.Login7, s *session, cur *live) (*session, *loginFailure) {
	a := &gss.NTLMAcceptor{Config: c.srv.ntlmConfig()}
	ctx, cancel := context.WithTimeout(context.Background(), ntlmValidateTimeout)
	defer cancel()
	out, res, err := a.Step(ctx, l.SSPI, c.srv.validator())
	if err == nil && res == nil {
		c.tok.Reset()
		c.tok.SSPI(out)
		if err := c.sendTokens(); err != nil {
			return nil, c.ntlmFailed(fmt.Errorf("sending the CHALLENGE: %w", err))
		}
		m, rerr := c.r.ReadMessage()
		switch {
		case rerr != nil:
			return nil, c.ntlmFailed(fmt.Errorf("no AUTHENTICATE from the client: %w", rerr))
		case m.Type != tds.PacketSSPI:
			return nil, c.ntlmFailed(fmt.Errorf("%w: %v instead of the SSPI message with the AUTHENTICATE", tds.ErrUnexpectedType, m.Type))
		}
		out, res, err = a.Step(ctx, m.Data, c.srv.validator())
		if err == nil && res == nil {
			err = errors.New("a second NEGOTIATE instead of the AUTHENTICATE")
		}
	}
	if err != nil {
		return nil, c.ntlmFailed(err)
	}
	if res.Anonymous {
		// NTLM cannot be delegated: the double hop arrives with no credential.
		return nil, c.failed18456(anonymousLogon, stateTokenAccess, reasonTokenAccess, "ANONYMOUS_NTLM", schemeNTLM, nil)
	}
	v := res.Validation
	s.ntlm, s.authScheme, s.reply = res, schemeNTLM, out
	s.login = v.Domain + `\` + v.Account
	if v.Domain == "" {
		s.login = c.srv.cfg.NetBIOS + `\` + v.Account
	}
	return c.authorize(l, s, cur)
}

// ntlmFailed is 17806/18452 for an NTLM handshake that failed, with the
// DC's NTSTATUS: a wrong password is SEC_E_LOGON_DENIED, no DC reachable
// SEC_E_NO_AUTHENTICATING_AUTHORITY.
func (c *conn) ntlmFailed(err error) *loginFailure {
	ev := events.Event{ID: events.SQLUntrustedDomain, Outcome: events.Failure, State: 1, Address: c.addr, AuthScheme: schemeNTLM,
		Account: c.srv.cfg.ServiceAccount, Package: "NTLM", Reason: ntlm.ReasonMalformed}
	secCode, secText := uint32(0x8009030C), "The logon attempt failed" // SEC_E_LOGON_DENIED
	var ne *ntlm.Error
	if errors.As(err, &ne) {
		ev.Reason, ev.Status = ne.Reason, ne.Status.String()
		if ne.Status == ntstatus.NoLogonServers {
			secCode, secText = 0x80090311, "No authority could be contacted for authentication" // SEC_E_NO_AUTHENTICATING_AUTHORITY
		}
	}
	return c.handshakeFailed(ev, secCode, secText, "NTLM: "+err.Error())
}
