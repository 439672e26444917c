package ldapserver

import "github.com/doublehop/doublehop/ldap"

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

func noSuchObject(dn string) *ldap.Error {
	return &ldap.Error{Code: ldap.NoSuchObject, Reason: "NO_SUCH_OBJECT",
		Message: "0000208D: NameErr: DSID-0310028B, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'" + dn + "'\n"}
}
