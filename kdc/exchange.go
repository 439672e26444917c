package kdc

import (
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// exchange is the state of one AS or TGS exchange.
type exchange struct {
	s      *Server
	req    *kmsg.KDCReq
	raw    []byte // the request as the client encoded it (PA-REQ-ENC-PA-REP's checksum covers it)
	remote string
	view   *directory.View
	now    time.Time
	fast   *fastState // the request came armored (RFC 6113)
}

func (x *exchange) realm() string { return x.view.Lab.Realm }

// encPARepAsked reports PA-REQ-ENC-PA-REP in the request (RFC 6806 §11).
func (x *exchange) encPARepAsked() bool {
	_, ok := x.req.PA(kmsg.PAReqEncPARep)
	return ok
}

// errorReply encodes a KRB-ERROR (RFC 4120 §5.9.1). cname/crealm are set when
// known (clients derive salts from them). The e-data is what a Windows KDC
// sends: for an AS exchange METHOD-DATA (how to pre-authenticate, with which
// salts), for a TGS exchange the NTSTATUS in KERB-ERROR-DATA (MS-KILE 2.2.1).
func (s *Server) errorReply(x *exchange, e *kerr.Error) []byte {
	var padata types.PADataSequence
	if x != nil && x.req.MsgType == kmsg.MsgASReq && e.Code != kerr.KRB_ERR_GENERIC {
		var client *directory.Entry
		if name, err := clientName(x.req.Body.CName); err == nil {
			client, _ = x.view.Account(name)
		}
		padata = x.methodPA(client, e.Code)
	}
	if x != nil && x.fast != nil {
		return s.fastError(x, e, padata)
	}
	var edata []byte
	switch {
	case padata != nil:
		edata, _ = asn1.Marshal(padata)
	case e.Status != 0:
		edata = kerr.ExtErrorEData(e.Status)
	}
	return s.errorReplyData(x, e, edata)
}

// fastError answers an armored request's error inside the tunnel: the
// KRB-ERROR itself in PA-FX-ERROR, with padata, in an outer KRB-ERROR.
func (s *Server) fastError(x *exchange, e *kerr.Error, padata types.PADataSequence) []byte {
	fs := x.fast
	x.fast = nil // the inner error is a plain one
	inner := s.errorReplyData(x, e, nil)
	x.fast = fs
	edata, err := x.armorError(inner, padata)
	if err != nil {
		return inner
	}
	return s.errorReplyData(x, e, edata)
}

// errorReplyData is errorReply with explicit e-data (METHOD-DATA for
// KDC_ERR_PREAUTH_REQUIRED, RFC 4120 §5.2.7.5).
func (s *Server) errorReplyData(x *exchange, e *kerr.Error, edata []byte) []byte {
	now := time.Now().UTC()
	if x != nil {
		now = x.now.UTC() // the KDC's clock, kdc_clock_offset included: clients correct their skew from stime
	}
	realm := ""
	var sname types.PrincipalName
	k := messages.KRBError{PVNO: 5, MsgType: kmsg.MsgError, STime: now.Truncate(time.Second), Susec: now.Nanosecond() / 1000,
		ErrorCode: int32(e.Code), EText: e.Text}
	if x != nil {
		realm = x.realm()
		sname = x.req.Body.SName
		if len(x.req.Body.CName.NameString) > 0 {
			k.CName, k.CRealm = x.req.Body.CName, x.req.Body.Realm
		}
		if x.fast != nil && x.fast.hideNames() {
			k.CName, k.CRealm = types.PrincipalName{NameType: kmsg.NTWellKnown, NameString: []string{"WELLKNOWN", "ANONYMOUS"}}, "WELLKNOWN:ANONYMOUS"
		}
	}
	if len(sname.NameString) == 0 {
		sname = types.PrincipalName{NameType: kmsg.NTSrvInst, NameString: []string{"krbtgt", realm}}
	}
	k.Realm, k.SName, k.EData = realm, sname, edata
	b, err := k.Marshal()
	if err != nil {
		return nil
	}
	return b
}

// ticketSpec is everything needed to issue one ticket.
type ticketSpec struct {
	client      types.PrincipalName
	clientRealm string
	service     types.PrincipalName // sname as the client asked (canonical for krbtgt)
	serviceAcct *directory.Entry
	flags       asn1.BitString
	authTime    time.Time
	startTime   time.Time // zero: now
	endTime     time.Time
	renewTill   time.Time
	sessionKey  types.EncryptionKey
	caddr       types.HostAddresses
	pac         *pac.PAC
	// u2uKey seals a user-to-user ticket: the additional TGT's session key,
	// with no kvno (RFC 4120 §3.3.3).
	u2uKey *types.EncryptionKey
}

// seal encrypts the ticket with the service account's strongest key (AD uses
// the account's msDS-SupportedEncryptionTypes, not the client's list), signing
// the PAC with that key and the krbtgt key (MS-PAC 2.8).
func (x *exchange) seal(t ticketSpec) (messages.Ticket, *kerr.Error) {
	if len(t.serviceAcct.ETypes) == 0 && t.u2uKey == nil {
		return messages.Ticket{}, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "NO_SERVICE_ETYPE",
			"%s has no usable keys (msDS-SupportedEncryptionTypes %v, allow_rc4=%v)", t.serviceAcct.Name, t.serviceAcct.Enctypes, x.view.Lab.Policy.AllowRC4).WithStatus(kerr.StatusUnsupportedEtype)
	}
	var key types.EncryptionKey
	kvno := 0
	if t.u2uKey != nil {
		key = *t.u2uKey
	} else {
		key, kvno = t.serviceAcct.Keys[t.serviceAcct.ETypes[0]], t.serviceAcct.KVNO
	}
	flags := t.flags
	if x.encPARepAsked() {
		// The client asked for the encrypted padata: the ticket says so
		// too, as Windows marks it (Samba's fast_tests' enc_pa_rep cases).
		flags = kmsg.CopyFlags(flags)
		kmsg.SetFlag(&flags, kmsg.FlagEncPARep)
	}
	etp := messages.EncTicketPart{Flags: flags, Key: t.sessionKey, CRealm: t.clientRealm, CName: t.client,
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}},
		AuthTime:  kmsg.KerberosTime(t.authTime), StartTime: kmsg.KerberosTime(x.now), EndTime: kmsg.KerberosTime(t.endTime),
		CAddr: t.caddr}
	if !t.startTime.IsZero() {
		etp.StartTime = kmsg.KerberosTime(t.startTime)
	}
	if !t.renewTill.IsZero() {
		etp.RenewTill = kmsg.KerberosTime(t.renewTill)
	}
	if t.pac != nil {
		krbtgt := x.view.Krbtgt()
		kk, ok := krbtgt.Key(krbtgt.ETypes[0])
		if !ok {
			return messages.Ticket{}, kerr.Errorf(kerr.KRB_ERR_GENERIC, "NO_KRBTGT_KEY", "krbtgt has no key")
		}
		// A TGT's PAC carries the server and KDC signatures only; the ticket
		// signature goes into service tickets from the TGS (MS-PAC 2.8.3, as
		// Windows since KB5008380), not into one an AS exchange issues.
		if len(t.service.NameString) > 0 && strings.EqualFold(t.service.NameString[0], "krbtgt") || x.req.MsgType == kmsg.MsgASReq {
			b, err := t.pac.Sign(key, kk)
			if err == nil {
				etp.AuthorizationData, err = kmsg.SetPAC(etp.AuthorizationData, b)
			}
			if err != nil {
				return messages.Ticket{}, kerr.Errorf(kerr.KRB_ERR_GENERIC, "PAC", "sign PAC: %v", err)
			}
		} else if err := t.pac.SignTicket(&etp, key, kk); err != nil {
			return messages.Ticket{}, kerr.Errorf(kerr.KRB_ERR_GENERIC, "PAC", "sign PAC: %v", err)
		}
	}
	tkt, err := kmsg.SealTicket(t.service, x.realm(), etp, key, kvno)
	if err != nil {
		return messages.Ticket{}, kerr.Errorf(kerr.KRB_ERR_GENERIC, "SEAL", "%v", err)
	}
	return tkt, nil
}

// reply encodes AS-REP or TGS-REP with the enc-part under replyKey (RFC 4120 §5.4.2).
func (x *exchange) reply(tkt messages.Ticket, t ticketSpec, replyKey types.EncryptionKey, usage uint32, kvno int, padata types.PADataSequence) ([]byte, *kerr.Error) {
	var strengthen types.EncryptionKey
	if x.fast != nil {
		var ke *kerr.Error
		if strengthen, replyKey, ke = x.fast.strengthen(replyKey); ke != nil {
			return nil, ke
		}
		kvno = 0
	}
	part := messages.EncKDCRepPart{Key: t.sessionKey, LastReqs: []messages.LastReq{{LRType: 0, LRValue: kmsg.KerberosTime(x.now)}},
		Nonce: x.req.Body.Nonce, Flags: t.flags, AuthTime: kmsg.KerberosTime(t.authTime), StartTime: kmsg.KerberosTime(x.now),
		EndTime: kmsg.KerberosTime(t.endTime), SRealm: x.realm(), SName: t.service, CAddr: t.caddr}
	if x.req.MsgType == kmsg.MsgASReq {
		part.Flags = asn1.BitString{Bytes: append([]byte(nil), t.flags.Bytes...), BitLength: t.flags.BitLength} // the ticket's flags stay as they are
		kmsg.SetFlag(&part.Flags, kmsg.FlagEncPARep)                                                            // RFC 6806 §11: this KDC can prove the request arrived unmodified, as Windows says in every AS-REP
		if _, asked := x.req.PA(kmsg.PAReqEncPARep); asked {
			// The proof, when the client asked for it: a checksum of the
			// request as it encoded it, under the reply key.
			ck, err := kcrypto.Checksum(replyKey, kcrypto.UsageASReq, x.raw)
			if err != nil {
				return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "CHECKSUM", "%v", err)
			}
			cb, err := asn1.Marshal(ck)
			if err != nil {
				return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "ENCODE", "%v", err)
			}
			part.EncPAData = types.PADataSequence{{PADataType: kmsg.PAReqEncPARep, PADataValue: cb}}
			if x.view.Lab.Policy.KerberosArmoring == "supported" {
				// FAST negotiation: the KDC says, in the encrypted padata (RFC 6806 §11) where a
				// man in the middle cannot strip it, that it takes armor.
				part.EncPAData = append(part.EncPAData, types.PAData{PADataType: kmsg.PAFXFast, PADataValue: []byte{}})
			}
		}
	}
	if !t.renewTill.IsZero() {
		part.RenewTill = kmsg.KerberosTime(t.renewTill)
	}
	tgs := x.req.MsgType == kmsg.MsgTGSReq
	if tgs && x.encPARepAsked() {
		part.Flags = kmsg.CopyFlags(part.Flags)
		kmsg.SetFlag(&part.Flags, kmsg.FlagEncPARep)
	}
	pb, err := kmsg.MarshalEncKDCRepPart(part, tgs)
	if err != nil {
		return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "ENCODE", "%v", err)
	}
	ed, err := kcrypto.Encrypt(pb, replyKey, usage, kvno)
	if err != nil {
		return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "ENCRYPT", "%v", err)
	}
	f := messages.KDCRepFields{PVNO: 5, MsgType: kmsg.MsgASRep, PAData: padata, CRealm: t.clientRealm, CName: t.client, Ticket: kmsg.CleanTicket(tkt), EncPart: ed}
	if tgs {
		f.MsgType = kmsg.MsgTGSRep
	}
	if x.fast != nil {
		if ke := x.armorReply(&f, strengthen); ke != nil {
			return nil, ke
		}
	}
	b, err := kmsg.MarshalKDCRep(f) // the bytes of messages.ASRep/TGSRep.Marshal
	if err != nil {
		return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "ENCODE", "%v", err)
	}
	return b, nil
}

// sessionEType picks the session key etype: the client's first choice that
// the service supports too (RFC 4120 §3.1.3, MS-KILE 3.3.5.2).
func sessionEType(clientETypes []int32, svc *directory.Entry) (int32, bool) {
	for _, c := range clientETypes {
		for _, s := range svc.ETypes {
			if c == s && kcrypto.KeySize(c) != 0 {
				return c, true
			}
		}
	}
	return 0, false
}

// pacInfo builds the PAC contents for a user from the directory (MS-PAC 2.5-2.10).
func (x *exchange) pacInfo(e *directory.Entry, authTime time.Time) pac.Info {
	l := x.view.Lab
	primary := uint32(513)
	uac := uint32(0x200) // NORMAL_ACCOUNT
	switch e.Type {
	case directory.TypeComputer:
		primary, uac = 515, 0x1000 // WORKSTATION_TRUST_ACCOUNT
		if e.InGroup("Domain Controllers") {
			primary, uac = 516, 0x2000
		}
	}
	if e.Delegation.Mode == directory.DelegUnconstrained {
		uac |= 0x80000 // TRUSTED_FOR_DELEGATION
	}
	if e.Delegation.ProtocolTransition {
		uac |= 0x1000000 // TRUSTED_TO_AUTH_FOR_DELEGATION
	}
	if e.Sensitive {
		uac |= 0x100000 // NOT_DELEGATED
	}
	groups := []uint32{primary}
	for _, g := range x.view.GroupRIDs(e.Account) {
		if g != primary {
			groups = append(groups, g)
		}
	}
	upn := e.UPN
	if upn == "" {
		upn = e.Name + "@" + strings.ToLower(l.Realm)
	}
	return pac.Info{LogonTime: authTime, EffectiveName: e.Name, FullName: e.DisplayName, LogonServer: "DC",
		LogonDomainName: l.NetBIOS, DomainSID: l.DomainSID, UserRID: e.RID, PrimaryGroupRID: primary, GroupRIDs: groups,
		UserAccountControl: uac, ClientName: e.Name, UPN: upn, DNSDomainName: l.Realm, SamName: e.Name, UserSID: e.SID,
		ExtraSIDs: []string{"S-1-18-1"}, Attributes: pac.WasRequested, Requestor: e.SID}
}

// emit sends an audit event with the exchange's common fields.
func (x *exchange) emit(ev events.Event) {
	ev.Address = x.remote
	x.s.ev.Emit(ev)
}

func fail(ev *events.Event, e *kerr.Error) {
	ev.Outcome = events.Failure
	ev.Code = int(e.Code)
	ev.CodeName = e.Code.Name()
	ev.Status = e.StatusString()
	ev.Reason = e.Reason
	if e.Text != "" {
		ev.Message += ": " + e.Text
	}
}

// clientName reads the client principal of an AS-REQ, accepting NT-ENTERPRISE
// (user@realm) as Windows clients send it (RFC 6806 §5).
func clientName(pn types.PrincipalName) (string, error) {
	if len(pn.NameString) != 1 {
		return "", fmt.Errorf("client name with %d components", len(pn.NameString))
	}
	n := pn.NameString[0]
	if pn.NameType == kmsg.NTEnterprise {
		n = strings.SplitN(n, "@", 2)[0]
	}
	return n, nil
}

type asnFlags = asn1.BitString
