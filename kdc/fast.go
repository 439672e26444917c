package kdc

import (
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FAST, Kerberos armoring (RFC 6113 §5.4; MS-KILE 3.3.5.7.4): the client
// wraps its real request in a tunnel keyed from a TGT it already holds —
// explicit armor (an AP-REQ) in an AS exchange, the PA-TGS-REQ's own
// session in a TGS exchange — and the KDC answers inside the same tunnel:
// errors as PA-FX-ERROR, the reply key strengthened, the ticket bound by
// KrbFastFinished. Pre-authentication inside it may use the encrypted
// challenge (§5.4.6), which proves both sides.

// fastCookie is the PA-FX-COOKIE a Windows KDC hands out (the client sends
// it back; it carries no state here).
var fastCookie = []byte("Microsoft")

// fastState is an armored exchange.
type fastState struct {
	armorKey types.EncryptionKey
	options  asn1.BitString
	padata   types.PADataSequence // the KDC's part of KrbFastResponse.padata (its encrypted challenge)
}

// hideNames reports the hide-client-names option.
func (f *fastState) hideNames() bool { return kmsg.HasFlag(f.options, kmsg.FastHideClientNames) }

// unwrapFAST opens PA-FX-FAST: the armor key (from explicit armor, or from
// tgsKey: the TGS authenticator's subkey and TGT session key), the checksum
// over the outer body, then the inner request takes the outer one's place.
// A nil fastState with a nil error: the request is not armored.
func (x *exchange) unwrapFAST(tgsSubkey, tgsSession *types.EncryptionKey) (*fastState, *kerr.Error) {
	pa, ok := x.req.PA(kmsg.PAFXFast)
	if !ok {
		return nil, nil
	}
	ar, err := kmsg.ParseFastArmoredReq(pa.PADataValue)
	if err != nil {
		return nil, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "FAST_DECODE", "%v", err)
	}
	var armorKey types.EncryptionKey
	switch {
	case x.req.MsgType == kmsg.MsgTGSReq:
		if tgsSubkey == nil || tgsSubkey.KeyType == 0 {
			return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "FAST_NO_SUBKEY", "an armored TGS request whose authenticator has no subkey (RFC 6113 §5.4.1.1)")
		}
		if ar.Armor.ArmorType == 0 {
			// The PA-TGS-REQ is the armor.
			armorKey, err = kcrypto.CF2(*tgsSubkey, *tgsSession, "subkeyarmor", "ticketarmor")
			break
		}
		// Explicit armor too (a device's TGT, as Windows' compound
		// identity sends it): its armor key folded with the TGS subkey.
		explicit, ke := x.explicitArmor(ar.Armor)
		if ke != nil {
			return nil, ke
		}
		armorKey, err = kcrypto.CF2(explicit, *tgsSubkey, "explicitarmor", "tgsarmor")
	default:
		var ke *kerr.Error
		armorKey, ke = x.explicitArmor(ar.Armor)
		if ke != nil {
			return nil, ke
		}
	}
	if err != nil {
		return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "FAST_ARMOR_KEY", "%v", err)
	}
	// The request checksum covers the outer body in an AS request, and the
	// PA-TGS-REQ's AP-REQ in a TGS request (RFC 6113 §5.4.2).
	checked, what := x.req.RawBody, "the outer body"
	if x.req.MsgType == kmsg.MsgTGSReq {
		tgsReq, _ := x.req.PA(kmsg.PATGSReq)
		checked, what = tgsReq.PADataValue, "the PA-TGS-REQ"
	}
	if err := kcrypto.VerifyChecksum(armorKey, kcrypto.UsageFastReqChecksum, checked, ar.ReqChecksum); err != nil {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "FAST_CHECKSUM", "the armored request's checksum of %s: %v", what, err)
	}
	inner, err := kmsg.OpenFastReq(ar.EncFastReq, armorKey)
	if err != nil {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "FAST_ENC_REQ", "the armored request does not open with the armor key: %v", err)
	}
	for bit := 0; bit < 16; bit++ {
		// Bits 0-15 are critical; the lab knows hide-client-names (1).
		if bit != kmsg.FastHideClientNames && kmsg.HasFlag(inner.FastOptions, bit) {
			return nil, kerr.Errorf(kerr.KDC_ERR_UNKNOWN_CRITICAL_FAST_OPTIONS, "FAST_OPTION", "critical FAST option %d", bit)
		}
	}
	x.req.Body, x.req.PAData, x.req.RawBody = inner.Body, inner.PAData, inner.RawBody
	return &fastState{armorKey: armorKey, options: inner.FastOptions}, nil
}

// explicitArmor checks an AS exchange's armor, an AP-REQ with a TGT of this
// realm and a subkey, and derives the armor key (RFC 6113 §5.4.1.1).
func (x *exchange) explicitArmor(a kmsg.KrbFastArmor) (types.EncryptionKey, *kerr.Error) {
	if a.ArmorType != kmsg.ArmorAPRequest {
		return types.EncryptionKey{}, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "FAST_ARMOR_TYPE", "armor type %d (only 1, an AP-REQ)", a.ArmorType)
	}
	ap, fast := kmsg.FastAPReq(a.ArmorValue)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return ap.Unmarshal(a.ArmorValue) }); err != nil {
			return types.EncryptionKey{}, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "FAST_ARMOR", "the armor is not an AP-REQ: %v", err)
		}
	}
	st, ke := x.openTGT(ap.Ticket, true)
	if ke == nil {
		ke = x.checkTGT(st)
	}
	if ke != nil {
		ke.Text = "the armor ticket: " + ke.Text
		return types.EncryptionKey{}, ke
	}
	auth, ke := x.openAuthenticator(ap.EncryptedAuthenticator, st.tgt, kcrypto.UsageAPReqAuthenticator)
	if ke != nil {
		ke.Text = "the armor: " + ke.Text
		return types.EncryptionKey{}, ke
	}
	if auth.SubKey.KeyType == 0 {
		return types.EncryptionKey{}, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "FAST_NO_SUBKEY", "the armor's authenticator has no subkey (RFC 6113 §5.4.1.1)")
	}
	k, err := kcrypto.CF2(auth.SubKey, st.tgt.Key, "subkeyarmor", "ticketarmor")
	if err != nil {
		return types.EncryptionKey{}, kerr.Errorf(kerr.KRB_ERR_GENERIC, "FAST_ARMOR_KEY", "%v", err)
	}
	return k, nil
}

// checkEncChallenge verifies PA-ENCRYPTED-CHALLENGE (RFC 6113 §5.4.6): the
// client's timestamp under KRB-FX-CF2(armor key, its long-term key,
// "clientchallengearmor", "challengelongterm"); the KDC answers with its
// own under "kdcchallengearmor".
func (x *exchange) checkEncChallenge(v []byte, client *directory.Entry) (int32, *kerr.Error) {
	et, key, ke := x.checkEncTS(v, client, "PA-ENCRYPTED-CHALLENGE", kcrypto.UsageEncChallengeClient, func(k types.EncryptionKey) (types.EncryptionKey, error) {
		return kcrypto.CF2(x.fast.armorKey, k, "clientchallengearmor", "challengelongterm")
	})
	if ke != nil {
		return 0, ke
	}
	// The KDC's half: its own timestamp, proving it knows the key too.
	kk, err := kcrypto.CF2(x.fast.armorKey, key, "kdcchallengearmor", "challengelongterm")
	if err == nil {
		var tb []byte
		if tb, err = kmsg.MarshalPAEncTSEnc(x.now); err == nil {
			var e types.EncryptedData
			if e, err = kcrypto.Encrypt(tb, kk, kcrypto.UsageEncChallengeKDC, 0); err == nil {
				var eb []byte
				if eb, err = asn1.Marshal(e); err == nil {
					x.fast.padata = append(x.fast.padata, types.PAData{PADataType: kmsg.PAEncryptedChallenge, PADataValue: eb})
				}
			}
		}
	}
	if err != nil {
		return 0, kerr.Errorf(kerr.KRB_ERR_GENERIC, "CHALLENGE", "%v", err)
	}
	return et, nil
}

// strengthen folds a fresh key into the reply key (RFC 6113 §5.4.3's
// strengthen-key): KRB-FX-CF2(strengthen, reply key, "strengthenkey",
// "replykey").
func (f *fastState) strengthen(replyKey types.EncryptionKey) (sk, key types.EncryptionKey, ke *kerr.Error) {
	sk, err := kcrypto.NewSessionKey(replyKey.KeyType)
	if err == nil {
		key, err = kcrypto.CF2(sk, replyKey, "strengthenkey", "replykey")
	}
	if err != nil {
		return sk, key, kerr.Errorf(kerr.KRB_ERR_GENERIC, "FAST_STRENGTHEN", "%v", err)
	}
	return sk, key, nil
}

// armorReply puts a reply inside the tunnel (RFC 6113 §5.4.3): the reply's
// padata and the KDC's challenge in KrbFastResponse with the strengthen key
// and KrbFastFinished binding the ticket; the outer reply carries only
// PA-FX-FAST (and no client name when the client asked to hide it).
func (x *exchange) armorReply(f *messages.KDCRepFields, strengthen types.EncryptionKey) *kerr.Error {
	fs := x.fast
	tb, err := kmsg.MarshalTicket(f.Ticket)
	if err != nil {
		return kerr.Errorf(kerr.KRB_ERR_GENERIC, "ENCODE", "%v", err)
	}
	ck, err := kcrypto.Checksum(fs.armorKey, kcrypto.UsageFastFinished, tb)
	if err != nil {
		return kerr.Errorf(kerr.KRB_ERR_GENERIC, "CHECKSUM", "%v", err)
	}
	resp := kmsg.KrbFastResponse{PAData: append(append(types.PADataSequence{}, f.PAData...), fs.padata...), StrengthenKey: &strengthen,
		Finished: &kmsg.KrbFastFinished{Timestamp: x.now, CRealm: f.CRealm, CName: f.CName, TicketChecksum: ck}, Nonce: x.req.Body.Nonce}
	b, err := kmsg.MarshalFastReply(resp, fs.armorKey)
	if err != nil {
		return kerr.Errorf(kerr.KRB_ERR_GENERIC, "ENCODE", "%v", err)
	}
	f.PAData = types.PADataSequence{{PADataType: kmsg.PAFXFast, PADataValue: b}}
	if fs.hideNames() {
		f.CName, f.CRealm = types.PrincipalName{NameType: kmsg.NTWellKnown, NameString: []string{"WELLKNOWN", "ANONYMOUS"}}, "WELLKNOWN:ANONYMOUS"
	}
	return nil
}

// armorError puts an error inside the tunnel: the real KRB-ERROR as
// PA-FX-ERROR, beside the cookie and the padata the error would carry, in
// the e-data of an outer KRB-ERROR with the same code (RFC 6113 §5.4.3).
func (x *exchange) armorError(inner []byte, padata types.PADataSequence) ([]byte, error) {
	pa := append(types.PADataSequence{{PADataType: kmsg.PAFXError, PADataValue: inner}, {PADataType: kmsg.PAFXCookie, PADataValue: fastCookie}}, padata...)
	b, err := kmsg.MarshalFastReply(kmsg.KrbFastResponse{PAData: pa, Nonce: x.req.Body.Nonce}, x.fast.armorKey)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(types.PADataSequence{{PADataType: kmsg.PAFXFast, PADataValue: b}})
}
