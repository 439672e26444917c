package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// Delegation policies for Get.
const (
	DelegateAuto   = "auto"   // like Windows: only to services the KDC marks ok-as-delegate
	DelegateAlways = "always" // like curl --delegation always
	DelegateNever  = "never"
)

// GetOptions tune one Negotiate request.
type GetOptions struct {
	Delegate string // auto (default), always, never
	SPN      string // override the SPN derived from the URL
	Accept   string // Accept header, e.g. application/json
	NoMutual bool   // do not ask for mutual authentication
	// NoNTLM refuses the fallback to NTLM (Windows' "Network security:
	// Restrict NTLM: Outgoing NTLM traffic to remote servers = Deny all").
	NoNTLM bool
}

// Response is the outcome of Get, with the Kerberos evidence.
type Response struct {
	URL         string
	SPN         string
	Status      int
	Header      http.Header
	Body        []byte
	Mechanism   string           // Kerberos | NTLM: what Negotiate (or the NTLM scheme) used
	Fallback    string           // why Negotiate used NTLM instead of Kerberos
	Ticket      *kmsg.Credential // the service ticket used (never printed with its key)
	Delegated   bool             // a forwarded TGT was sent
	Mutual      string           // verified | not requested | not sent by the server
	ServerError *kerr.Error      // the KRB-ERROR the server sent back, if any
}

// SPNForURL derives the SPN from the host exactly as typed (RFC 4559 §4.1):
// http://web/ asks for HTTP/web, http://web.lab.local/ for HTTP/web.lab.local.
func SPNForURL(u *url.URL) string { return "HTTP/" + strings.ToLower(u.Hostname()) }

// Get fetches a URL with Negotiate authentication, retrying once after a 401.
func (c *Client) Get(ctx context.Context, rawURL string, o GetOptions) (*Response, error) {
	return c.get(ctx, rawURL, o, nil)
}

// GetWith is Get with a service ticket the caller already holds.
func (c *Client) GetWith(ctx context.Context, rawURL string, cred kmsg.Credential, o GetOptions) (*Response, error) {
	return c.get(ctx, rawURL, o, &cred)
}

func (c *Client) get(ctx context.Context, rawURL string, o GetOptions, given *kmsg.Credential) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("not an http(s) URL: %q", rawURL)
	}
	// One connection for the 401 and the authenticated retry, as browsers
	// and curl --negotiate do (IIS keeps the connection open after a 401).
	tr := &http.Transport{DialContext: c.dial, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	resp := &Response{URL: rawURL, SPN: o.SPN}
	if resp.SPN == "" {
		resp.SPN = SPNForURL(u)
		if r := c.cfg.Resolver; r != nil && net.ParseIP(u.Hostname()) == nil {
			resp.SPN = "HTTP/" + strings.ToLower(r.Canonical(u.Hostname()))
		}
	}
	r1, err := c.do(ctx, hc, u, o, "")
	if err != nil {
		return nil, err
	}
	if r1.StatusCode != http.StatusUnauthorized {
		return fill(resp, r1)
	}
	if !offersNegotiate(r1.Header) {
		if offers(r1.Header, "NTLM") && !o.NoNTLM {
			drain(r1)
			resp.Fallback = "the server offers only the NTLM scheme"
			return c.ntlmGet(ctx, u, o, "NTLM", resp)
		}
		return fill(resp, r1)
	}
	drain(r1)
	var cred kmsg.Credential
	if given != nil {
		cred = *given
	} else {
		var kerbErr error
		if net.ParseIP(u.Hostname()) == nil {
			cred, kerbErr = c.ServiceTicket(ctx, resp.SPN)
		}
		if why := fallbackReason(u, kerbErr); why != "" && !o.NoNTLM {
			drain(r1)
			resp.Fallback = why
			return c.ntlmGet(ctx, u, o, "Negotiate", resp)
		}
		if kerbErr != nil {
			return nil, fmt.Errorf("no ticket for %s: %w", resp.SPN, kerbErr)
		}
		if net.ParseIP(u.Hostname()) != nil {
			return nil, fmt.Errorf("no ticket for %s: Kerberos is not used for an IP address, and NTLM is refused", resp.SPN)
		}
	}
	resp.Ticket = &cred
	resp.Mechanism = "Kerberos"
	deleg, err := c.delegation(ctx, cred, o.Delegate)
	if err != nil {
		return nil, err
	}
	resp.Delegated = len(deleg) > 0
	flags := gss.FlagConf | gss.FlagInteg | gss.FlagReplay | gss.FlagSequence
	if !o.NoMutual {
		flags |= gss.FlagMutual
	}
	tok, auth, err := gss.InitiatorToken(cred, gss.InitiatorOptions{Flags: flags, Deleg: deleg, SPNEGO: true, Now: c.cfg.Now()})
	if err != nil {
		return nil, err
	}
	r2, err := c.do(ctx, hc, u, o, "Negotiate "+base64.StdEncoding.EncodeToString(tok))
	if err != nil {
		return nil, err
	}
	out, err := fill(resp, r2)
	if err != nil {
		return nil, err
	}
	reply := negotiateToken(r2.Header)
	switch {
	case r2.StatusCode == http.StatusUnauthorized:
		if e, ok := gss.ParseErrorToken(reply); ok {
			out.ServerError = e
			c.serverError(e, resp.SPN)
		}
	case o.NoMutual:
		out.Mutual = "not requested"
	case len(reply) == 0:
		out.Mutual = "not sent by the server"
	default:
		if err := gss.VerifyMutual(reply, cred, auth); err != nil {
			return out, fmt.Errorf("mutual authentication with %s failed: %w", resp.SPN, err)
		}
		out.Mutual = "verified"
	}
	return out, nil
}

// delegation returns a KRB-CRED with a forwarded TGT when policy says so: by
// default only for ok-as-delegate tickets, and only if the TGT is forwardable
// (RFC 4121 §4.1.1; Windows' rule for unconstrained delegation).
func (c *Client) delegation(ctx context.Context, svc kmsg.Credential, policy string) ([]byte, error) {
	switch policy {
	case DelegateNever:
		return nil, nil
	case "", DelegateAuto:
		if !kmsg.HasFlag(svc.Info.Flags, kmsg.FlagOKAsDelegate) {
			return nil, nil
		}
	case DelegateAlways:
	default:
		return nil, fmt.Errorf("delegation policy %q: want auto, always or never", policy)
	}
	tgt, _, err := c.TGT()
	if err != nil {
		return nil, err
	}
	if !kmsg.HasFlag(tgt.Info.Flags, kmsg.FlagForwardable) {
		return nil, nil // nothing to delegate: the user cannot be delegated or kinit asked for no forwardable TGT
	}
	rep, err := c.kdc.ForwardedTGT(ctx, tgt)
	if err != nil {
		c.kdcError(err, "krbtgt/"+c.cfg.Realm)
		return nil, nil
	}
	return kmsg.MarshalKRBCred([]kmsg.Credential{rep.Credential()}, svc.Info.Key)
}

// serverError records what Windows logs as Kerberos event 4 for KRB_AP_ERR_MODIFIED.
func (c *Client) serverError(e *kerr.Error, spn string) {
	msg := fmt.Sprintf("The Kerberos client received a %s error from the server for %s.", e.Code.Name(), spn)
	if e.Code == kerr.KRB_AP_ERR_MODIFIED {
		msg += " The target server failed to decrypt the ticket provided by the client: the SPN is registered on an account other than the account the target service uses, or the service's password differs from the KDC's."
	}
	c.ev.Emit(events.Event{ID: events.KerberosClientError, Outcome: events.Failure, Service: spn, Code: int(e.Code),
		CodeName: e.Code.Name(), Status: e.StatusString(), Message: msg})
}

func (c *Client) do(ctx context.Context, hc *http.Client, u *url.URL, o GetOptions, auth string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if o.Accept != "" {
		req.Header.Set("Accept", o.Accept)
	}
	return hc.Do(req)
}

func (c *Client) dial(ctx context.Context, network, addr string) (netConn, error) {
	if r := c.cfg.Resolver; r != nil {
		if host, port, err := net.SplitHostPort(addr); err == nil {
			if m, ok := r.Machine(host); ok {
				addr = net.JoinHostPort(m, port)
			}
		}
	}
	if c.cfg.Dialer != nil {
		return c.cfg.Dialer.DialContext(ctx, network, addr)
	}
	return defaultDialer.DialContext(ctx, network, addr)
}

func fill(r *Response, hr *http.Response) (*Response, error) {
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	r.Status, r.Header, r.Body = hr.StatusCode, hr.Header, b
	return r, nil
}

func offersNegotiate(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "negotiate") {
			return true
		}
	}
	return false
}

// negotiateToken decodes the token of "WWW-Authenticate: Negotiate <b64>".
func negotiateToken(h http.Header) []byte {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if ok && strings.EqualFold(scheme, "Negotiate") {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok))
			if err == nil {
				return b
			}
		}
	}
	return nil
}
