package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ldap"
)

// LDAPPort is the DC's LDAP port (RFC 4511 §5.2).
const LDAPPort = "389"

// LDAP opens an LDAP connection to a DC as the logged-on user, as LDP's
// Negotiate bind does: a service ticket for ldap/<dc> (a 4769 at the KDC),
// GSS-SPNEGO with mutual authentication and no signing, so the DC's 4624
// names the user.
func (c *Client) LDAP(ctx context.Context, dc string) (*ldap.Conn, error) {
	spn := "ldap/" + strings.ToLower(dc)
	cred, err := c.ServiceTicket(ctx, spn)
	if err != nil {
		return nil, err
	}
	tok, auth, err := gss.InitiatorToken(cred, gss.InitiatorOptions{Flags: gss.FlagMutual, SPNEGO: true})
	if err != nil {
		return nil, err
	}
	nc, err := c.dial(ctx, "tcp", dc+":"+LDAPPort)
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	conn := ldap.NewConn(nc)
	rep, err := conn.BindSPNEGO(tok)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ldap bind to %s as %s: %w", dc, cred.Info.PName.PrincipalNameString(), err)
	}
	if err := gss.VerifyMutual(rep, cred, auth); err != nil {
		nc.Close()
		return nil, fmt.Errorf("ldap bind to %s: the DC's reply does not prove it: %w", dc, err)
	}
	return conn, nil
}
