package ldap

import "fmt"

// ResultCode is an LDAPResult resultCode (RFC 4511 §4.1.9, Appendix A).
type ResultCode int

const (
	Success                      ResultCode = 0
	OperationsError              ResultCode = 1
	ProtocolErrorCode            ResultCode = 2
	SizeLimitExceeded            ResultCode = 4
	CompareFalse                 ResultCode = 5
	CompareTrue                  ResultCode = 6
	AuthMethodNotSupported       ResultCode = 7
	StrongerAuthRequired         ResultCode = 8
	UnavailableCriticalExtension ResultCode = 12
	ConfidentialityRequired      ResultCode = 13
	SaslBindInProgress           ResultCode = 14
	NoSuchAttribute              ResultCode = 16
	UndefinedAttributeType       ResultCode = 17
	ConstraintViolation          ResultCode = 19
	AttributeOrValueExists       ResultCode = 20
	InvalidAttributeSyntax       ResultCode = 21
	NoSuchObject                 ResultCode = 32
	InvalidDNSyntax              ResultCode = 34
	InappropriateAuthentication  ResultCode = 48
	InvalidCredentials           ResultCode = 49
	InsufficientAccessRights     ResultCode = 50
	UnwillingToPerform           ResultCode = 53
	ObjectClassViolation         ResultCode = 65
	EntryAlreadyExists           ResultCode = 68
	Other                        ResultCode = 80
)

var codeNames = map[ResultCode]string{
	Success: "success", OperationsError: "operationsError", ProtocolErrorCode: "protocolError",
	SizeLimitExceeded: "sizeLimitExceeded", CompareFalse: "compareFalse", CompareTrue: "compareTrue",
	AuthMethodNotSupported: "authMethodNotSupported", StrongerAuthRequired: "strongerAuthRequired",
	UnavailableCriticalExtension: "unavailableCriticalExtension", ConfidentialityRequired: "confidentialityRequired",
	SaslBindInProgress: "saslBindInProgress", NoSuchAttribute: "noSuchAttribute", UndefinedAttributeType: "undefinedAttributeType",
	ConstraintViolation: "constraintViolation", AttributeOrValueExists: "attributeOrValueExists",
	InvalidAttributeSyntax: "invalidAttributeSyntax", NoSuchObject: "noSuchObject", InvalidDNSyntax: "invalidDNSyntax",
	InappropriateAuthentication: "inappropriateAuthentication", InvalidCredentials: "invalidCredentials",
	InsufficientAccessRights: "insufficientAccessRights", UnwillingToPerform: "unwillingToPerform",
	ObjectClassViolation: "objectClassViolation", EntryAlreadyExists: "entryAlreadyExists", Other: "other",
}

func (c ResultCode) String() string {
	if n, ok := codeNames[c]; ok {
		return fmt.Sprintf("%s (%d)", n, int(c))
	}
	return fmt.Sprintf("resultCode %d", int(c))
}

// Error is a refused operation: the result code and the diagnostic message
// in AD's format ("%08X: LdapErr: DSID-…, comment: …, data …, v4563").
type Error struct {
	Code    ResultCode
	Message string
	Reason  string // the lab's short reason for the audit event
}

func (e *Error) Error() string  { return e.Code.String() + ": " + e.Message }
func (e *Error) String() string { return e.Error() }

// AD's diagnostic messages for the refusals the lab reproduces.
const (
	// Simple bind in clear when LDAP signing is required (KB 935834; 2019+ with
	// "Domain controller: LDAP server signing requirements" = Require signing).
	diagStrongerAuth = "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v4563"
	// A bad password or refused ticket (SEC_E_LOGON_DENIED 0x8009030C, data 52e).
	diagInvalidCredentials = "8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 52e, v4563"
	// An operation before a successful bind.
	diagNeedBind = "000004DC: LdapErr: DSID-0C090CF4, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563"
	// A write without the right (ERROR_DS_INSUFF_ACCESS_RIGHTS 0x2098).
	diagInsufficient = "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"
	// ERROR_DS_SPN_VALUE_NOT_UNIQUE_IN_FOREST (8467 = 0x2113), MS-ADTS 3.1.1.5.1.3.
	diagDuplicateSPN = "00002113: AtrErr: DSID-03200BBA, #1:\n\t0: 00002113: DSID-03200BBA, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 90303 (servicePrincipalName):len 4\n"
)

func noSuchObject(dn string) *Error {
	return &Error{Code: NoSuchObject, Reason: "NO_SUCH_OBJECT",
		Message: "0000208D: NameErr: DSID-0310028B, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'" + dn + "'\n"}
}
