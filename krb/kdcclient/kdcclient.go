package kdcclient

import (
	"context"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KDCClient runs AS and TGS exchanges against one KDC over TCP. The client
// tier, the web tier (its own TGT, S4U, forwarded TGTs) and the load generator
// share it.
type Client struct {
	Addr   string // host:port
	Realm  string
	Dialer Dialer
	Now    func() time.Time // client clock (skew scenarios move it)
}

func (k *Client) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// LoginWithKey does an AS exchange with pre-authentication by a long-term key
// the caller already holds (keytab or derived once): one AS-REQ with
// PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2), as MIT's kinit -k does after the first
// PREAUTH_REQUIRED round.
func (k *Client) LoginWithKey(ctx context.Context, user string, key types.EncryptionKey, kvno int, options []int) (*kmsg.KDCReply, error) {
	pa, err := kmsg.NewPAEncTimestamp(key, kvno, k.now())
	if err != nil {
		return nil, err
	}
	req := kmsg.ASRequest{Realm: k.Realm, Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{user}},
		Options: options, ETypes: []int32{key.KeyType}, PAData: []types.PAData{pa}, Till: k.now().Add(10 * time.Hour)}
	b, nonce, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := SendTCP(ctx, k.Dialer, k.Addr, b)
	if err != nil {
		return nil, err
	}
	return kmsg.DecodeKDCRep(rep, key, kcrypto.UsageASRepEncPart, nonce)
}

// TGS sends a TGS-REQ built from r and decrypts the reply.
func (k *Client) TGS(ctx context.Context, r kmsg.TGSRequest) (*kmsg.KDCReply, error) {
	if r.Realm == "" {
		r.Realm = k.Realm
	}
	if r.Now.IsZero() {
		r.Now = k.now()
	}
	b, nonce, key, usage, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := SendTCP(ctx, k.Dialer, k.Addr, b)
	if err != nil {
		return nil, err
	}
	return kmsg.DecodeKDCRep(rep, key, usage, nonce)
}

// ServiceTicket asks for a ticket to spn with a TGT credential.
func (k *Client) ServiceTicket(ctx context.Context, tgt kmsg.Credential, spn string, options ...int) (*kmsg.KDCReply, error) {
	return k.TGS(ctx, kmsg.TGSRequest{Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
		Service: kmsg.ParsePrincipalName(spn), Options: options})
}

// ForwardedTGT asks for a TGT with the FORWARDED flag, to put in a KRB-CRED
// (RFC 4120 §2.6, RFC 4121 §4.1.1).
func (k *Client) ForwardedTGT(ctx context.Context, tgt kmsg.Credential) (*kmsg.KDCReply, error) {
	return k.TGS(ctx, kmsg.TGSRequest{Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
		Service: types.PrincipalName{NameType: kmsg.NTSrvInst, NameString: []string{"krbtgt", k.Realm}},
		Options: []int{kmsg.FlagForwardable, kmsg.FlagForwarded}})
}

// S4U2Self asks for a ticket to the service itself on behalf of user (MS-SFU 3.1.5.1).
func (k *Client) S4U2Self(ctx context.Context, svcTGT kmsg.Credential, user string) (*kmsg.KDCReply, error) {
	userPN := types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{user}}
	pa, err := kmsg.NewPAForUser(userPN, k.Realm, svcTGT.Info.Key)
	if err != nil {
		return nil, err
	}
	return k.TGS(ctx, kmsg.TGSRequest{Client: svcTGT.Info.PName, ClientRealm: svcTGT.Info.PRealm, TGT: svcTGT.Ticket,
		SessionKey: svcTGT.Info.Key, Service: svcTGT.Info.PName, Options: []int{kmsg.FlagForwardable}, PAData: []types.PAData{pa}})
}

// S4U2Proxy asks for a ticket to target on behalf of the client of evidence,
// with cname-in-addl-tkt and PA-PAC-OPTIONS resource-based bit as Windows
// sends it (MS-SFU 3.1.5.2.1).
func (k *Client) S4U2Proxy(ctx context.Context, svcTGT kmsg.Credential, evidence kmsg.Credential, target string) (*kmsg.KDCReply, error) {
	pa, err := kmsg.NewPAPACOptions(kmsg.PACOptionRBCD)
	if err != nil {
		return nil, err
	}
	return k.TGS(ctx, kmsg.TGSRequest{Client: svcTGT.Info.PName, ClientRealm: svcTGT.Info.PRealm, TGT: svcTGT.Ticket,
		SessionKey: svcTGT.Info.Key, Service: kmsg.ParsePrincipalName(target), Options: []int{kmsg.FlagForwardable, kmsg.OptCNameInAddlTkt},
		AdditionalTickets: []messages.Ticket{evidence.Ticket}, PAData: []types.PAData{pa}})
}
