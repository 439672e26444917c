package netlogon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Dialer opens connections (the lab's host map in embedded mode).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// ClientConfig configures a member server's secure channel to the DC.
type ClientConfig struct {
	Addr   string // dc.lab.local:445
	Dialer Dialer
	// Ticket returns a service ticket for the DC's HOST SPN (HOST/dc.lab.local)
	// issued to the member's own account.
	Ticket func(ctx context.Context) (kmsg.Credential, error)
}

// Client is one member server's secure channel: one connection, reused,
// re-established when it breaks. It implements ntlm.Validator.
type Client struct {
	cfg  ClientConfig
	mu   sync.Mutex
	conn net.Conn
	key  types.EncryptionKey
	seq  uint64
}

// NewClient makes a client; the channel opens on first use.
func NewClient(cfg ClientConfig) *Client { return &Client{cfg: cfg} }

// ErrNoLogonServers is the NTSTATUS a member server reports when the DC
// cannot be reached (STATUS_NO_LOGON_SERVERS).
var ErrNoLogonServers = ntlm.Errorf(ntstatus.NoLogonServers, "NO_LOGON_SERVERS", "no domain controller answered the secure channel")

func (c *Client) connect(ctx context.Context) error {
	cred, err := c.cfg.Ticket(ctx)
	if err != nil {
		return fmt.Errorf("a ticket for the DC's Netlogon service: %w", err)
	}
	var d Dialer = &net.Dialer{Timeout: 5 * time.Second}
	if c.cfg.Dialer != nil {
		d = c.cfg.Dialer
	}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	tok, auth, err := gss.InitiatorToken(cred, gss.InitiatorOptions{Flags: gss.FlagMutual | gss.FlagInteg | gss.FlagConf})
	if err == nil {
		err = kmsg.WriteFrame(conn, tok)
	}
	var reply []byte
	if err == nil {
		reply, err = kmsg.ReadFrame(conn, MaxFrame)
	}
	if err == nil && (len(reply) == 0 || reply[0] != replyOK) {
		if len(reply) > 0 {
			err = ntlm.Errorf(ntstatus.AccessDenied, "SESSION_REFUSED", "the DC refused the secure channel: %s", reply[1:])
		} else {
			err = errors.New("netlogon: an empty handshake reply")
		}
	}
	if err == nil {
		err = gss.VerifyMutual(reply[1:], cred, auth)
	}
	if err != nil {
		conn.Close()
		return err
	}
	conn.SetDeadline(time.Time{})
	c.conn, c.key, c.seq = conn, cred.Info.Key, 0
	return nil
}

// ValidateNTLM passes a logon through to the DC.
func (c *Client) ValidateNTLM(ctx context.Context, r ntlm.ValidationRequest) (*ntlm.ValidationResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if c.conn == nil {
			if err := c.connect(ctx); err != nil {
				var ne *ntlm.Error
				if errors.As(err, &ne) {
					return nil, ne
				}
				e := *ErrNoLogonServers
				e.Text += ": " + err.Error()
				return nil, &e
			}
		}
		c.seq++
		req := SamLogonRequest{Seq: c.seq, User: r.User, Domain: r.Domain, Workstation: r.Workstation, ServerChallenge: r.ServerChallenge[:],
			NtResponse: r.NtResponse, LmResponse: r.LmResponse, Package: "NTLM"}
		if dl, ok := ctx.Deadline(); ok {
			c.conn.SetDeadline(dl)
		} else {
			c.conn.SetDeadline(time.Now().Add(15 * time.Second))
		}
		var resp SamLogonResponse
		err := writeSealed(c.conn, c.key, usageRequest, &req)
		if err == nil {
			err = readSealed(c.conn, c.key, usageResponse, &resp)
		}
		if err != nil || resp.Seq != c.seq {
			c.conn.Close()
			c.conn = nil
			continue // the channel broke (DC restarted, idle timeout): once more on a new one
		}
		return resp.validation()
	}
	return nil, ErrNoLogonServers
}

// Close closes the channel.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		err := c.conn.Close()
		c.conn = nil
		return err
	}
	return nil
}

// NewMemberClient is a member server's secure channel to the DC's Netlogon
// service at addr (dc.lab.local:445), opened with a ticket for HOST/<the DC's
// host> that the member's own logon (its service account's keytab) obtains.
func NewMemberClient(addr string, d Dialer, logon *kdcclient.ServiceLogon) *Client {
	dcHost, _, err := net.SplitHostPort(addr)
	if err != nil {
		dcHost = addr
	}
	return NewClient(ClientConfig{Addr: addr, Dialer: d,
		Ticket: func(ctx context.Context) (kmsg.Credential, error) { return logon.Ticket(ctx, "HOST/"+dcHost) }})
}
