// Package netlogon is the DC's pass-through authentication service for NTLM:
// a member server hands a user's NTLM response to the DC, which checks it
// against the account's NT hash and answers with the logon's identity and
// session key (MS-APDS 3.1.5, NetrLogonSamLogonEx, MS-NRPC 3.5.4.5.1). The
// tiers never hold a user's secret.
//
// The transport is the lab's, not DCE/RPC: the caller authenticates to the
// DC with a Kerberos ticket for the DC's HOST SPN issued to its own service
// or computer account (where Windows runs NetrServerAuthenticate3 with the
// machine account's secret), and every request and answer after that is
// encrypted and integrity-protected under the ticket's session key with a
// sequence number (AES-CTS-HMAC, RFC 3962). The property is the one that
// matters: only an authenticated domain member can ask, so the DC is no
// password oracle for anyone on the network, and the user session key never
// travels in clear. A user account (bob) is refused.
package netlogon
