package kmsg

import (
	"fmt"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KDCReq is a decoded AS-REQ or TGS-REQ that keeps the exact bytes of its
// KDC-REQ-BODY: the PA-TGS-REQ authenticator checksum covers those bytes (RFC
// 4120 §7.2.2 key usage 6), and re-encoding is not guaranteed to reproduce them.
type KDCReq struct {
	MsgType int
	PAData  types.PADataSequence
	Body    messages.KDCReqBody
	RawBody []byte
}

type rawKDCReq struct {
	PVNO    int                  `asn1:"explicit,tag:1"`
	MsgType int                  `asn1:"explicit,tag:2"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
	ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
}

// Message types (RFC 4120 §5.10).
const (
	MsgASReq   = 10
	MsgASRep   = 11
	MsgTGSReq  = 12
	MsgTGSRep  = 13
	MsgAPReq   = 14
	MsgAPRep   = 15
	MsgKRBCred = 22
	MsgError   = 30
)

// ParseKDCReq decodes an AS-REQ ([APPLICATION 10]) or TGS-REQ ([APPLICATION 12]).
func ParseKDCReq(b []byte) (*KDCReq, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("short KDC request")
	}
	var tag int
	switch b[0] {
	case 0x6a:
		tag = tagASReq
	case 0x6c:
		tag = tagTGSReq
	default:
		return nil, fmt.Errorf("not a KDC request (first byte 0x%02x)", b[0])
	}
	if pvno, msgType, r, ok := fastKDCReq(b, tag); ok {
		// The same checks, in the same order, as after the gofork decode below.
		if pvno != 5 {
			return nil, kerr.Errorf(kerr.KDC_ERR_BAD_PVNO, "BAD_PVNO", "pvno %d", pvno)
		}
		if msgType != tag {
			return nil, kerr.Errorf(kerr.KRB_AP_ERR_MSG_TYPE, "MSG_TYPE", "msg-type %d in application tag %d", msgType, tag)
		}
		return r, nil
	}
	return parseKDCReqGofork(b, tag)
}

// parseKDCReqGofork is ParseKDCReq with gofork: the path for every request the
// fast decoder leaves alone (additional tickets, non-canonical encodings, errors).
func parseKDCReqGofork(b []byte, tag int) (*KDCReq, error) {
	var raw rawKDCReq
	err := SafeUnmarshal(func() error {
		rest, err := asn1.UnmarshalWithParams(b, &raw, fmt.Sprintf("application,explicit,tag:%d", tag))
		if err == nil && len(rest) != 0 {
			err = fmt.Errorf("%d trailing bytes", len(rest))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode KDC-REQ: %w", err)
	}
	if raw.PVNO != 5 {
		return nil, kerr.Errorf(kerr.KDC_ERR_BAD_PVNO, "BAD_PVNO", "pvno %d", raw.PVNO)
	}
	if raw.MsgType != tag {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_MSG_TYPE, "MSG_TYPE", "msg-type %d in application tag %d", raw.MsgType, tag)
	}
	r := &KDCReq{MsgType: raw.MsgType, PAData: raw.PAData, RawBody: raw.ReqBody.Bytes}
	if err := SafeUnmarshal(func() error { return r.Body.Unmarshal(raw.ReqBody.Bytes) }); err != nil {
		// BER's non-minimal integers (impacket's name-type -128 as FF 80): decode
		// a canonical copy; RawBody keeps the bytes the client checksummed.
		c, changed, cerr := der.MinimalIntegers(raw.ReqBody.Bytes)
		if cerr != nil || !changed {
			return nil, fmt.Errorf("decode KDC-REQ-BODY: %w", err)
		}
		r.Body = messages.KDCReqBody{}
		if err := SafeUnmarshal(func() error { return r.Body.Unmarshal(c) }); err != nil {
			return nil, fmt.Errorf("decode KDC-REQ-BODY: %w", err)
		}
	}
	for i := range r.Body.AdditionalTickets {
		r.Body.AdditionalTickets[i] = CleanTicket(r.Body.AdditionalTickets[i])
	}
	return r, nil
}

// PACRequested reads PA-PAC-REQUEST (MS-KILE 2.2.3): the client's
// include-pac, or ok=false when it sent none (or an undecodable one).
func (r *KDCReq) PACRequested() (include, ok bool) {
	pa, found := r.PA(PAPACRequest)
	if !found {
		return false, false
	}
	var v struct {
		IncludePAC bool `asn1:"explicit,tag:0"`
	}
	if err := SafeUnmarshal(func() error { _, e := asn1.Unmarshal(pa.PADataValue, &v); return e }); err != nil {
		return false, false
	}
	return v.IncludePAC, true
}

// PA returns the first padata of type t.
func (r *KDCReq) PA(t int32) (types.PAData, bool) {
	for _, p := range r.PAData {
		if p.PADataType == t {
			return p, true
		}
	}
	return types.PAData{}, false
}

// PA-DATA types (RFC 4120 §7.5.2, RFC 6113, MS-KILE 2.2, MS-SFU 2.2).
const (
	PATGSReq          int32 = 1
	PAEncTimestamp    int32 = 2
	PAPWSalt          int32 = 3
	PAETypeInfo       int32 = 11
	PAETypeInfo2      int32 = 19
	PAPACRequest      int32 = 128
	PAForUser         int32 = 129
	PAS4UX509User     int32 = 130
	PAPACOptions      int32 = 167
	PAReqEncPARep     int32 = 149
	PAFXFast          int32 = 136
	PASupportedEtypes int32 = 165
)
