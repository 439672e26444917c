package kdc

import (
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/pac"
)

// TGTs a read-only DC issued (MS-KILE 3.3.5.7.1; MS-ADTS 3.1.1.11.2.*): an
// RODC seals them with its own krbtgt_N and marks the kvno with N
// (N<<16 | kvno). The writable DC takes one only from an RODC still linked
// to that krbtgt, still a partial-secrets account, for an account the RODC
// holds and may hold; and it trusts nothing of the RODC's PAC but the
// requestor's SID: it builds the PAC again from the directory.

// tgtIssuer finds the krbtgt whose key sealed a TGT: the domain's, or an
// RODC's krbtgt_N (and that RODC) when the kvno says N.
func (x *exchange) tgtIssuer(kvno int) (*directory.Entry, *directory.Entry, *kerr.Error) {
	n := int(uint32(kvno) >> 16) // the kvno is an unsigned 32-bit number in an ASN.1 INTEGER
	if n == 0 {
		return x.view.Krbtgt(), nil, nil
	}
	k, ok := x.view.KrbtgtN(n)
	if !ok {
		return nil, nil, kerr.Errorf(kerr.KDC_ERR_POLICY, "RODC_UNKNOWN", "a TGT from read-only DC number %d, which has no krbtgt account here", n)
	}
	rodc, ok := x.view.RODCOf(k.Name)
	if !ok {
		return nil, nil, kerr.Errorf(kerr.KDC_ERR_POLICY, "RODC_NO_KRBTGT_LINK", "no read-only DC's msDS-KrbTgtLink names %s", k.Name)
	}
	if !rodc.RODC.PartialSecrets {
		return nil, nil, kerr.Errorf(kerr.KDC_ERR_POLICY, "RODC_NOT_PARTIAL_SECRETS", "%s is no longer a read-only DC (UF_PARTIAL_SECRETS_ACCOUNT is off)", rodc.Name)
	}
	return k, rodc, nil
}

// rodcTGT checks an RODC's TGT (its requestor already checked) against the
// password replication policy and rebuilds its PAC.
func (x *exchange) rodcTGT(st *tgsState, name string, requester *directory.Entry) *kerr.Error {
	if !st.rodc.RODC.Holds(requester.Name) {
		return kerr.Errorf(kerr.KDC_ERR_TGT_REVOKED, "RODC_NOT_REVEALED", "read-only DC %s does not hold the secrets of %s (msDS-RevealedUsers)", st.rodc.Name, name)
	}
	if ok, why := x.view.MayReveal(st.rodc, requester); !ok {
		return kerr.Errorf(kerr.KDC_ERR_TGT_REVOKED, "RODC_NOT_ALLOWED", "%s", why)
	}
	info := x.pacInfo(requester, st.tgt.AuthTime)
	info.Attributes, info.HasAttributes = 0, false // the RODC's request flags are not carried over
	npc, err := pac.New(info)
	if err != nil {
		return kerr.Errorf(kerr.KRB_ERR_GENERIC, "PAC", "%v", err)
	}
	st.pac = npc
	return nil
}
