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

// Error is a refused operation: the Result code and the diagnostic message
// in AD's format ("%08X: LdapErr: DSID-…, comment: …, data …, v4563").
type Error struct {
	Code    ResultCode
	Message string
	Reason  string // the lab's short reason for the audit event
}

func (e *Error) Error() string  { return e.Code.String() + ": " + e.Message }
func (e *Error) String() string { return e.Error() }
