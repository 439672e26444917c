// Package client is Bob's workstation (ws01.lab.local): logon (kinit), an
// MIT-format credential cache that MIT's klist reads (and caches MIT's kinit
// wrote), klist, and an HTTP client that does Negotiate (RFC 4559) the way a
// Windows browser does — SPN from the host as typed, a forwarded TGT only for
// ok-as-delegate services, mutual authentication, and the server's KRB-ERROR
// reported like Windows' Kerberos event 4.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/ccache"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Config configures the workstation.
type Config struct {
	Realm    string
	KDC      string // host:port
	CCache   string // credential cache path (KRB5CCNAME without FILE:)
	Dialer   kdcclient.Dialer
	Now      func() time.Time // the workstation clock (skew scenarios move it)
	Events   events.Sink
	Host     string // ws01.lab.local
	AllowRC4 bool   // offer RC4 too (INSECURE; only when the lab allows it)
	// Resolver is the workstation's DNS (the domain's zone); nil: names are
	// their own canonical names and the Dialer maps them.
	Resolver Resolver
}

// Resolver is the workstation's view of DNS, as Negotiate uses it.
type Resolver interface {
	// Canonical follows CNAMEs: Windows browsers ask for HTTP/<canonical
	// name>, so a CNAME alias needs no SPN of its own and an A record does.
	Canonical(host string) string
	// Machine names the lab host that answers for host (an alias, an
	// address), for dialing.
	Machine(host string) (string, bool)
}

// FromKrb5Conf fills Realm and KDC from a krb5.conf (KRB5_CONFIG), the way
// MIT tools find their KDC: default_realm and its first kdc.
func FromKrb5Conf(path string, cfg *Config) error {
	c, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("krb5.conf %s: %w", path, err)
	}
	if cfg.Realm == "" {
		cfg.Realm = c.LibDefaults.DefaultRealm
	}
	for _, r := range c.Realms {
		if strings.EqualFold(r.Realm, cfg.Realm) && len(r.KDC) > 0 && cfg.KDC == "" {
			cfg.KDC = r.KDC[0]
		}
	}
	if cfg.Realm == "" || cfg.KDC == "" {
		return fmt.Errorf("krb5.conf %s names no default realm or no KDC for it", path)
	}
	for _, e := range c.LibDefaults.DefaultTktEnctypeIDs {
		if e == kcrypto.ETypeRC4HMAC {
			cfg.AllowRC4 = true
		}
	}
	return nil
}

// Client is Bob's workstation.
type Client struct {
	cfg Config
	kdc *kdcclient.Client
	ev  events.Sink
}

// New makes a client.
func New(cfg Config) *Client {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CCache == "" {
		cfg.CCache = ccache.DefaultPath()
	}
	cfg.CCache = strings.TrimPrefix(cfg.CCache, "FILE:")
	if cfg.Host == "" {
		cfg.Host = "ws01.lab.local"
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	// Events carry the real time, not the workstation's (possibly skewed)
	// Kerberos clock, so the merged timeline stays in order.
	return &Client{cfg: cfg, ev: events.Stamp(ev, cfg.Host, "client", time.Now),
		kdc: &kdcclient.Client{Addr: cfg.KDC, Realm: cfg.Realm, Dialer: cfg.Dialer, Now: cfg.Now}}
}

// CCachePath is the cache the client uses.
func (c *Client) CCachePath() string { return c.cfg.CCache }

func (c *Client) etypes() []int32 {
	e := []int32{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1}
	if c.cfg.AllowRC4 {
		e = append(e, kcrypto.ETypeRC4HMAC)
	}
	return e
}

// Kinit logs user on with a password (RFC 4120 §3.1): an AS-REQ without
// pre-authentication to learn the etype and salt (KDC_ERR_PREAUTH_REQUIRED with
// PA-ETYPE-INFO2), then PA-ENC-TIMESTAMP; the TGT goes into a new cache.
func (c *Client) Kinit(ctx context.Context, user, password string) (kmsg.Credential, error) {
	cname := types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{user}}
	opts := []int{kmsg.FlagForwardable, kmsg.FlagRenewable, kmsg.OptRenewableOK}
	now := c.cfg.Now()
	req := kmsg.ASRequest{Realm: c.cfg.Realm, Client: cname, Options: opts, ETypes: c.etypes(), Till: now.Add(10 * time.Hour), RTime: now.Add(7 * 24 * time.Hour)}
	b, nonce, err := req.Marshal()
	if err != nil {
		return kmsg.Credential{}, err
	}
	rep, err := kdcclient.SendTCP(ctx, c.cfg.Dialer, c.cfg.KDC, b)
	var info types.ETypeInfo2
	switch {
	case err == nil:
		// DONT_REQ_PREAUTH: the KDC answered at once; its PA-ETYPE-INFO2 names the salt.
		for _, pa := range mustASRepPA(rep) {
			if pa.PADataType == kmsg.PAETypeInfo2 {
				info, _ = kmsg.ETypeInfo2FromPA(pa.PADataValue)
			}
		}
		if len(info) == 0 {
			return kmsg.Credential{}, fmt.Errorf("AS-REP without PA-ETYPE-INFO2")
		}
		key, err := kcrypto.StringToKey(password, info[0].Salt, info[0].EType)
		if err != nil {
			return kmsg.Credential{}, err
		}
		r, err := kmsg.DecodeKDCRep(rep, key, kcrypto.UsageASRepEncPart, nonce)
		if err != nil {
			return kmsg.Credential{}, c.kdcError(err, "krbtgt/"+c.cfg.Realm)
		}
		return c.saveTGT(r, user, password)
	case isCode(err, kerr.KDC_ERR_PREAUTH_REQUIRED):
		k, _ := kmsg.ParseKRBError(rep)
		var ok bool
		if info, ok = kmsg.ETypeInfo2(k.EData); !ok {
			return kmsg.Credential{}, fmt.Errorf("KDC_ERR_PREAUTH_REQUIRED without PA-ETYPE-INFO2")
		}
	default:
		return kmsg.Credential{}, c.kdcError(err, "krbtgt/"+c.cfg.Realm)
	}
	key, err := kcrypto.StringToKey(password, info[0].Salt, info[0].EType)
	if err != nil {
		return kmsg.Credential{}, err
	}
	pa, err := kmsg.NewPAEncTimestamp(key, 0, c.cfg.Now())
	if err != nil {
		return kmsg.Credential{}, err
	}
	req.PAData = []types.PAData{pa}
	b, nonce, err = req.Marshal()
	if err != nil {
		return kmsg.Credential{}, err
	}
	rep, err = kdcclient.SendTCP(ctx, c.cfg.Dialer, c.cfg.KDC, b)
	if err != nil {
		return kmsg.Credential{}, c.kdcError(err, "krbtgt/"+c.cfg.Realm)
	}
	r, err := kmsg.DecodeKDCRep(rep, key, kcrypto.UsageASRepEncPart, nonce)
	if err != nil {
		return kmsg.Credential{}, err
	}
	return c.saveTGT(r, user, password)
}

func (c *Client) saveTGT(r *kmsg.KDCReply, user, password string) (kmsg.Credential, error) {
	cred := r.Credential()
	cc := &ccache.Cache{Default: kmsg.NewPrincipal(cred.Info.PName, cred.Info.PRealm)}
	e, err := ccache.CredentialFrom(cred)
	if err != nil {
		return cred, err
	}
	cc.Add(e)
	if err := os.MkdirAll(filepath.Dir(c.cfg.CCache), 0o700); err != nil {
		return cred, err
	}
	if err := cc.Save(c.cfg.CCache); err != nil {
		return cred, err
	}
	return cred, c.saveNTLM(user, password)
}

// Cache loads the credential cache.
func (c *Client) Cache() (*ccache.Cache, error) {
	cc, err := ccache.Load(c.cfg.CCache)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no credentials cache found (filename: %s): run kinit", c.cfg.CCache)
		}
		return nil, err
	}
	return cc, nil
}

// TGT returns the cache's TGT for the client's realm.
func (c *Client) TGT() (kmsg.Credential, *ccache.Cache, error) {
	cc, err := c.Cache()
	if err != nil {
		return kmsg.Credential{}, nil, err
	}
	realm := cc.Default.Realm
	e, ok := cc.Find(kmsg.Principal{NameType: kmsg.NTSrvInst, Components: []string{"krbtgt", realm}, Realm: realm})
	if !ok {
		return kmsg.Credential{}, cc, fmt.Errorf("no TGT for %s in %s: run kinit", cc.Default, c.cfg.CCache)
	}
	cred, err := e.Credential()
	if err != nil {
		return kmsg.Credential{}, cc, err
	}
	if c.cfg.Now().After(cred.Info.EndTime) {
		return cred, cc, fmt.Errorf("the TGT of %s expired at %s: run kinit", cc.Default, cred.Info.EndTime.Local().Format(time.DateTime))
	}
	return cred, cc, nil
}

// ServiceTicket returns a ticket for spn from the cache or the KDC (which it
// then caches, as kvno does).
func (c *Client) ServiceTicket(ctx context.Context, spn string) (kmsg.Credential, error) {
	tgt, cc, err := c.TGT()
	if err != nil {
		return kmsg.Credential{}, err
	}
	pn, _ := kmsg.ParsePrincipal(spn)
	want := kmsg.NewPrincipal(pn, cc.Default.Realm)
	if e, ok := cc.Find(want); ok {
		if cred, err := e.Credential(); err == nil && c.cfg.Now().Before(cred.Info.EndTime) {
			return cred, nil
		}
	}
	rep, err := c.kdc.ServiceTicket(ctx, tgt, spn, kmsg.FlagForwardable)
	if err != nil {
		return kmsg.Credential{}, c.kdcError(err, spn)
	}
	cred := rep.Credential()
	if e, err := ccache.CredentialFrom(cred); err == nil {
		cc.Add(e)
		cc.Save(c.cfg.CCache)
	}
	return cred, nil
}

// FreshServiceTicket asks the KDC for a ticket to spn without looking in or
// writing to the cache (benchmarks measure the TGS exchange every time).
func (c *Client) FreshServiceTicket(ctx context.Context, spn string) (kmsg.Credential, error) {
	tgt, _, err := c.TGT()
	if err != nil {
		return kmsg.Credential{}, err
	}
	rep, err := c.kdc.ServiceTicket(ctx, tgt, spn, kmsg.FlagForwardable)
	if err != nil {
		return kmsg.Credential{}, c.kdcError(err, spn)
	}
	return rep.Credential(), nil
}

// kdcError records a KDC refusal as Windows does (System event 3) and returns it.
func (c *Client) kdcError(err error, spn string) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		c.ev.Emit(events.Event{ID: events.KerberosError, Outcome: events.Failure, Service: spn, Code: int(ke.Code), CodeName: ke.Code.Name(),
			Status: ke.StatusString(), Message: "A Kerberos error message was received from the KDC: " + ke.Error()})
	}
	return err
}

// Kdestroy removes the cache (and the logon's NTLM credential).
func (c *Client) Kdestroy() error {
	os.Remove(c.ntlmPath())
	err := os.Remove(c.cfg.CCache)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func isCode(err error, code kerr.Code) bool {
	c, ok := kerr.CodeOf(err)
	return ok && c == code
}

func mustASRepPA(b []byte) types.PADataSequence {
	pa, _ := kmsg.KDCRepPAData(b)
	return pa
}

type netConn = net.Conn

var defaultDialer = &net.Dialer{Timeout: 5 * time.Second}
