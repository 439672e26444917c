// Package pac encodes, parses and signs the Privilege Attribute Certificate
// (MS-PAC): KERB_VALIDATION_INFO (2.5), PAC_CLIENT_INFO (2.7), UPN_DNS_INFO
// (2.10), PAC_ATTRIBUTES_INFO (2.14), PAC_REQUESTOR (2.15),
// S4U_DELEGATION_INFO (2.9), and the server, KDC and ticket signatures (2.8),
// over the NDR transfer syntax (MS-RPCE 2.2.5) in ndr.go.
//
// gokrb5's pac package only decodes, requires LOGON_INFO (MIT 1.20's minimal
// PACs have none) and cannot sign; this one does all three. Where the PAC sits
// in a ticket (AD-IF-RELEVANT) is package kmsg's business.
package pac
