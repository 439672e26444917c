package kerr

import (
	"errors"
	"fmt"

	"github.com/doublehop/doublehop/ntstatus"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// Code is an RFC 4120 §7.5.9 error code.
type Code int32

// Error codes the lab produces or reports (RFC 4120 §7.5.9).
const (
	KDC_ERR_NONE                 Code = 0
	KDC_ERR_NAME_EXP             Code = 1
	KDC_ERR_SERVICE_EXP          Code = 2
	KDC_ERR_BAD_PVNO             Code = 3
	KDC_ERR_C_PRINCIPAL_UNKNOWN  Code = 6
	KDC_ERR_S_PRINCIPAL_UNKNOWN  Code = 7
	KDC_ERR_PRINCIPAL_NOT_UNIQUE Code = 8
	KDC_ERR_NULL_KEY             Code = 9
	KDC_ERR_CANNOT_POSTDATE      Code = 10
	KDC_ERR_NEVER_VALID          Code = 11
	KDC_ERR_POLICY               Code = 12
	KDC_ERR_BADOPTION            Code = 13
	KDC_ERR_ETYPE_NOSUPP         Code = 14
	KDC_ERR_SUMTYPE_NOSUPP       Code = 15
	KDC_ERR_PADATA_TYPE_NOSUPP   Code = 16
	KDC_ERR_CLIENT_REVOKED       Code = 18
	KDC_ERR_SERVICE_REVOKED      Code = 19
	KDC_ERR_TGT_REVOKED          Code = 20
	KDC_ERR_KEY_EXPIRED          Code = 23
	KDC_ERR_PREAUTH_FAILED       Code = 24
	KDC_ERR_PREAUTH_REQUIRED     Code = 25
	KDC_ERR_SERVER_NOMATCH       Code = 26
	KDC_ERR_MUST_USE_USER2USER   Code = 27
	KDC_ERR_SVC_UNAVAILABLE      Code = 29
	KRB_AP_ERR_BAD_INTEGRITY     Code = 31
	KRB_AP_ERR_TKT_EXPIRED       Code = 32
	KRB_AP_ERR_TKT_NYV           Code = 33
	KRB_AP_ERR_REPEAT            Code = 34
	KRB_AP_ERR_NOT_US            Code = 35
	KRB_AP_ERR_BADMATCH          Code = 36
	KRB_AP_ERR_SKEW              Code = 37
	KRB_AP_ERR_BADADDR           Code = 38
	KRB_AP_ERR_BADVERSION        Code = 39
	KRB_AP_ERR_MSG_TYPE          Code = 40
	KRB_AP_ERR_MODIFIED          Code = 41
	KRB_AP_ERR_BADORDER          Code = 42
	KRB_AP_ERR_BADKEYVER         Code = 44
	KRB_AP_ERR_NOKEY             Code = 45
	KRB_AP_ERR_MUT_FAIL          Code = 46
	KRB_AP_ERR_BADDIRECTION      Code = 47
	KRB_AP_ERR_METHOD            Code = 48
	KRB_AP_ERR_BADSEQ            Code = 49
	KRB_AP_ERR_INAPP_CKSUM       Code = 50
	KRB_ERR_RESPONSE_TOO_BIG     Code = 52
	KRB_ERR_GENERIC              Code = 60
	KRB_ERR_FIELD_TOOLONG        Code = 61
	KDC_ERR_WRONG_REALM          Code = 68
	// RFC 6113 §5.4.1: a FAST option the KDC does not know among the critical ones.
	KDC_ERR_UNKNOWN_CRITICAL_FAST_OPTIONS Code = 93
)

var codeNames = map[Code]string{
	93: "KDC_ERR_UNKNOWN_CRITICAL_FAST_OPTIONS",
	0:  "KDC_ERR_NONE", 1: "KDC_ERR_NAME_EXP", 2: "KDC_ERR_SERVICE_EXP", 3: "KDC_ERR_BAD_PVNO",
	6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 7: "KDC_ERR_S_PRINCIPAL_UNKNOWN", 8: "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
	9: "KDC_ERR_NULL_KEY", 10: "KDC_ERR_CANNOT_POSTDATE", 11: "KDC_ERR_NEVER_VALID", 12: "KDC_ERR_POLICY",
	13: "KDC_ERR_BADOPTION", 14: "KDC_ERR_ETYPE_NOSUPP", 15: "KDC_ERR_SUMTYPE_NOSUPP",
	16: "KDC_ERR_PADATA_TYPE_NOSUPP", 18: "KDC_ERR_CLIENT_REVOKED", 19: "KDC_ERR_SERVICE_REVOKED",
	20: "KDC_ERR_TGT_REVOKED", 23: "KDC_ERR_KEY_EXPIRED", 24: "KDC_ERR_PREAUTH_FAILED",
	25: "KDC_ERR_PREAUTH_REQUIRED", 26: "KDC_ERR_SERVER_NOMATCH", 27: "KDC_ERR_MUST_USE_USER2USER",
	29: "KDC_ERR_SVC_UNAVAILABLE", 31: "KRB_AP_ERR_BAD_INTEGRITY", 32: "KRB_AP_ERR_TKT_EXPIRED",
	33: "KRB_AP_ERR_TKT_NYV", 34: "KRB_AP_ERR_REPEAT", 35: "KRB_AP_ERR_NOT_US", 36: "KRB_AP_ERR_BADMATCH",
	37: "KRB_AP_ERR_SKEW", 38: "KRB_AP_ERR_BADADDR", 39: "KRB_AP_ERR_BADVERSION", 40: "KRB_AP_ERR_MSG_TYPE",
	41: "KRB_AP_ERR_MODIFIED", 42: "KRB_AP_ERR_BADORDER", 44: "KRB_AP_ERR_BADKEYVER", 45: "KRB_AP_ERR_NOKEY",
	46: "KRB_AP_ERR_MUT_FAIL", 47: "KRB_AP_ERR_BADDIRECTION", 48: "KRB_AP_ERR_METHOD", 49: "KRB_AP_ERR_BADSEQ",
	50: "KRB_AP_ERR_INAPP_CKSUM", 52: "KRB_ERR_RESPONSE_TOO_BIG", 60: "KRB_ERR_GENERIC",
	61: "KRB_ERR_FIELD_TOOLONG", 68: "KDC_ERR_WRONG_REALM",
}

// Name is the RFC 4120 name, e.g. KRB_AP_ERR_MODIFIED.
func (c Code) Name() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("KRB_ERR_%d", int32(c))
}

// String shows the name with the decimal and the hex value Windows tools print
// (KRB_AP_ERR_MODIFIED is 41 = 0x29, the "29" of kerberr.h and lsass logs).
func (c Code) String() string { return fmt.Sprintf("%s (%d/0x%x)", c.Name(), int32(c), int32(c)) }

// NTSTATUS values Windows attaches to Kerberos failures (MS-KILE 2.2.1 KERB-EXT-ERROR, MS-ERREF 2.3).
const (
	StatusWrongPassword         = uint32(ntstatus.WrongPassword)
	StatusLogonFailure          = uint32(ntstatus.LogonFailure)
	StatusNoSuchUser            = uint32(ntstatus.NoSuchUser)
	StatusAccountRestriction    = uint32(ntstatus.AccountRestriction)
	StatusNotSupported          = uint32(ntstatus.NotSupported)
	StatusTimeDifference        = uint32(ntstatus.TimeDifference)
	StatusNoLogonServers        = uint32(ntstatus.NoLogonServers)
	StatusAccountDisabled       = uint32(ntstatus.AccountDisabled)
	StatusNotFound              = uint32(ntstatus.NotFound)
	StatusNoMatch               = uint32(ntstatus.NoMatch)
	StatusUnsupportedEtype      = uint32(ntstatus.KDCUnknownEtype)
	StatusTrustFailure          = uint32(ntstatus.AuthFirewallFailed)
	StatusInvalidParameter      = uint32(ntstatus.InvalidParameter)
	StatusBadTokenType          = uint32(ntstatus.BadTokenType)
	StatusAccessDenied          = uint32(ntstatus.AccessDenied)
	StatusServerUnavailable     = uint32(ntstatus.ServerUnavailable)
	StatusInsufficientResources = uint32(ntstatus.InsufficientResource)
)

// Error is a Kerberos protocol failure: the code that goes on the wire, the
// NTSTATUS Windows would log, and a machine-readable reason (MIT-style, e.g.
// NOT_ALLOWED_TO_DELEGATE) plus a human text.
type Error struct {
	Code   Code
	Status uint32
	Reason string
	Text   string
}

// Errorf builds an *Error.
func Errorf(code Code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Text: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := e.Code.String()
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// WithStatus sets the NTSTATUS and returns e.
func (e *Error) WithStatus(s uint32) *Error { e.Status = s; return e }

// StatusString renders the NTSTATUS as Windows does (0xC000006A), or "".
func (e *Error) StatusString() string {
	if e == nil || e.Status == 0 {
		return ""
	}
	return fmt.Sprintf("0x%08X", e.Status)
}

// CodeOf returns the Kerberos code carried by err (an *Error, a gokrb5
// messages.KRBError, or a wrapped one), and false when there is none.
func CodeOf(err error) (Code, bool) {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Code, true
	}
	var me messages.KRBError
	if errors.As(err, &me) {
		return Code(me.ErrorCode), true
	}
	var mp *messages.KRBError
	if errors.As(err, &mp) && mp != nil {
		return Code(mp.ErrorCode), true
	}
	return 0, false
}

// FromKRBError turns a received KRB-ERROR into an *Error, decoding the NTSTATUS
// from its e-data when the KDC sent one (MS-KILE 2.2.1/2.2.2).
func FromKRBError(k messages.KRBError) *Error {
	e := &Error{Code: Code(k.ErrorCode), Text: k.EText}
	if st, ok := ExtErrorStatus(k.EData); ok {
		e.Status = st
	}
	return e
}

// kerbErrorData is MS-KILE 2.2.2 KERB-ERROR-DATA.
type kerbErrorData struct {
	DataType  int32  `asn1:"explicit,tag:1"`
	DataValue []byte `asn1:"explicit,optional,tag:2"`
}

// kerbErrTypeExtended is KERB_ERR_TYPE_EXTENDED (MS-KILE 2.2.2).
const kerbErrTypeExtended = 3

// ExtErrorEData encodes an NTSTATUS as e-data the way Windows KDCs send it:
// KERB-ERROR-DATA{ data-type 3, data-value KERB-EXT-ERROR } (MS-KILE 2.2.1, 2.2.2).
func ExtErrorEData(status uint32) []byte {
	v := make([]byte, 12)
	v[0], v[1], v[2], v[3] = byte(status), byte(status>>8), byte(status>>16), byte(status>>24)
	v[8] = 3 // flags, as Windows sends them (KERB-EXT-ERROR, MS-KILE 2.2.1; Samba's suite expects 3)
	b, _ := asn1.Marshal(kerbErrorData{DataType: kerbErrTypeExtended, DataValue: v})
	return b
}

// ExtErrorStatus decodes ExtErrorEData's format; it accepts METHOD-DATA
// carrying PA-DATA type 3 too (what some Windows versions send).
func ExtErrorStatus(edata []byte) (uint32, bool) {
	if len(edata) == 0 {
		return 0, false
	}
	var d kerbErrorData
	if _, err := asn1.Unmarshal(edata, &d); err == nil && d.DataType == kerbErrTypeExtended && len(d.DataValue) >= 4 {
		v := d.DataValue
		return uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24, true
	}
	return 0, false
}
