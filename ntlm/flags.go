package ntlm

import "strings"

// Negotiate flags (MS-NLMP 2.2.2.5).
const (
	FlagUnicode                 uint32 = 0x00000001
	FlagOEM                     uint32 = 0x00000002
	FlagRequestTarget           uint32 = 0x00000004
	FlagSign                    uint32 = 0x00000010
	FlagSeal                    uint32 = 0x00000020
	FlagDatagram                uint32 = 0x00000040
	FlagLMKey                   uint32 = 0x00000080
	FlagNTLM                    uint32 = 0x00000200
	FlagAnonymous               uint32 = 0x00000800
	FlagOEMDomainSupplied       uint32 = 0x00001000
	FlagOEMWorkstationSupplied  uint32 = 0x00002000
	FlagAlwaysSign              uint32 = 0x00008000
	FlagTargetTypeDomain        uint32 = 0x00010000
	FlagTargetTypeServer        uint32 = 0x00020000
	FlagExtendedSessionSecurity uint32 = 0x00080000
	FlagIdentify                uint32 = 0x00100000
	FlagRequestNonNTSessionKey  uint32 = 0x00400000
	FlagTargetInfo              uint32 = 0x00800000
	FlagVersion                 uint32 = 0x02000000
	Flag128                     uint32 = 0x20000000
	FlagKeyExch                 uint32 = 0x40000000
	Flag56                      uint32 = 0x80000000
)

var flagNames = []struct {
	f uint32
	n string
}{{FlagUnicode, "UNICODE"}, {FlagOEM, "OEM"}, {FlagRequestTarget, "REQUEST_TARGET"}, {FlagSign, "SIGN"}, {FlagSeal, "SEAL"},
	{FlagLMKey, "LM_KEY"}, {FlagNTLM, "NTLM"}, {FlagAnonymous, "ANONYMOUS"}, {FlagAlwaysSign, "ALWAYS_SIGN"},
	{FlagTargetTypeDomain, "TARGET_TYPE_DOMAIN"}, {FlagTargetTypeServer, "TARGET_TYPE_SERVER"}, {FlagExtendedSessionSecurity, "EXTENDED_SESSIONSECURITY"},
	{FlagIdentify, "IDENTIFY"}, {FlagTargetInfo, "TARGET_INFO"}, {FlagVersion, "VERSION"}, {Flag128, "128"}, {FlagKeyExch, "KEY_EXCH"}, {Flag56, "56"}}

// FlagNames names the set flags, as Wireshark does.
func FlagNames(f uint32) string {
	var out []string
	for _, x := range flagNames {
		if f&x.f != 0 {
			out = append(out, x.n)
		}
	}
	return strings.Join(out, ",")
}
