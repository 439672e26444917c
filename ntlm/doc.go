// Package ntlm is NTLMSSP (MS-NLMP): the three messages and their AV pairs
// (negotiate.go, challenge.go, authenticate.go, avpair.go), the NTLMv2
// computations both sides share (crypto.go, MS-NLMP 3.3.2 and 3.4), the
// client that answers a challenge with a logon session's NT hash (client.go),
// and the server context a member server keeps per connection: it issues the
// challenge, hands the response to the DC for validation (it never holds a
// user's secret), then checks the MIC with the session key the DC returns
// (server.go). The DC side of validation is Verify (verify.go).
//
// The lab speaks NTLMv2 only by default, as a domain at LmCompatibilityLevel 5
// does: LM and NTLMv1 responses are refused with a reason that says so.
package ntlm
