package krb

import (
	"context"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KDCClient runs AS and TGS exchanges against one KDC over TCP. The client
// tier, the web tier (its own TGT, S4U, forwarded TGTs) and the load generator
// share it.
type KDCClient struct {
	Addr   string // host:port
	Realm  string
	Dialer Dialer
	Now    func() time.Time // client clock (skew scenarios move it)
}

func (k *KDCClient) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// LoginWithKey does an AS exchange with pre-authentication by a long-term key
// the caller already holds (keytab or derived once): one AS-REQ with
// PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2), as MIT's kinit -k does after the first
// PREAUTH_REQUIRED round.
func (k *KDCClient) LoginWithKey(ctx context.Context, user string, key types.EncryptionKey, kvno int, options []int) (*KDCReply, error) {
	pa, err := NewPAEncTimestamp(key, kvno, k.now())
	if err != nil {
		return nil, err
	}
	req := ASRequest{Realm: k.Realm, Client: types.PrincipalName{NameType: NTPrincipal, NameString: []string{user}},
		Options: options, ETypes: []int32{key.KeyType}, PAData: []types.PAData{pa}, Till: k.now().Add(10 * time.Hour)}
	b, nonce, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := SendTCP(ctx, k.Dialer, k.Addr, b)
	if err != nil {
		return nil, err
	}
	return DecodeKDCRep(rep, key, UsageASRepEncPart, nonce)
}

// TGS sends a TGS-REQ built from r and decrypts the reply.
func (k *KDCClient) TGS(ctx context.Context, r TGSRequest) (*KDCReply, error) {
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
	return DecodeKDCRep(rep, key, usage, nonce)
}

// ServiceTicket asks for a ticket to spn with a TGT credential.
func (k *KDCClient) ServiceTicket(ctx context.Context, tgt Credential, spn string, options ...int) (*KDCReply, error) {
	return k.TGS(ctx, TGSRequest{Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
		Service: ParsePrincipalName(spn), Options: options})
}

// ForwardedTGT asks for a TGT with the FORWARDED flag, to put in a KRB-CRED
// (RFC 4120 §2.6, RFC 4121 §4.1.1).
func (k *KDCClient) ForwardedTGT(ctx context.Context, tgt Credential) (*KDCReply, error) {
	return k.TGS(ctx, TGSRequest{Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
		Service: types.PrincipalName{NameType: NTSrvInst, NameString: []string{"krbtgt", k.Realm}},
		Options: []int{FlagForwardable, FlagForwarded}})
}

// S4U2Self asks for a ticket to the service itself on behalf of user (MS-SFU 3.1.5.1).
func (k *KDCClient) S4U2Self(ctx context.Context, svcTGT Credential, user string) (*KDCReply, error) {
	userPN := types.PrincipalName{NameType: NTPrincipal, NameString: []string{user}}
	pa, err := NewPAForUser(userPN, k.Realm, svcTGT.Info.Key)
	if err != nil {
		return nil, err
	}
	return k.TGS(ctx, TGSRequest{Client: svcTGT.Info.PName, ClientRealm: svcTGT.Info.PRealm, TGT: svcTGT.Ticket,
		SessionKey: svcTGT.Info.Key, Service: svcTGT.Info.PName, Options: []int{FlagForwardable}, PAData: []types.PAData{pa}})
}

// S4U2Proxy asks for a ticket to target on behalf of the client of evidence,
// with cname-in-addl-tkt and PA-PAC-OPTIONS resource-based bit as Windows
// sends it (MS-SFU 3.1.5.2.1).
func (k *KDCClient) S4U2Proxy(ctx context.Context, svcTGT Credential, evidence Credential, target string) (*KDCReply, error) {
	pa, err := NewPAPACOptions(PACOptionRBCD)
	if err != nil {
		return nil, err
	}
	return k.TGS(ctx, TGSRequest{Client: svcTGT.Info.PName, ClientRealm: svcTGT.Info.PRealm, TGT: svcTGT.Ticket,
		SessionKey: svcTGT.Info.Key, Service: ParsePrincipalName(target), Options: []int{FlagForwardable, OptCNameInAddlTkt},
		AdditionalTickets: []messages.Ticket{evidence.Ticket}, PAData: []types.PAData{pa}})
}
