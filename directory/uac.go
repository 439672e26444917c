package directory

import (
	"fmt"
	"strings"
)

// userAccountControl bits (MS-ADTS 2.2.16), the way ADUC, setspn's callers
// and every LDAP tool see an account's settings.
const (
	UACAccountDisable             = 0x00000002
	UACLockout                    = 0x00000010
	UACNormalAccount              = 0x00000200
	UACWorkstationTrustAccount    = 0x00001000
	UACServerTrustAccount         = 0x00002000
	UACDontExpirePassword         = 0x00010000
	UACTrustedForDelegation       = 0x00080000
	UACNotDelegated               = 0x00100000
	UACDontRequirePreauth         = 0x00400000
	UACPasswordExpired            = 0x00800000
	UACTrustedToAuthForDelegation = 0x01000000
	UACNoAuthDataRequired         = 0x02000000
	UACPartialSecretsAccount      = 0x04000000 // a read-only DC's account

	uacTypeBits = UACNormalAccount | UACWorkstationTrustAccount | UACServerTrustAccount
)

// IsDC reports whether the account is a domain controller's machine account.
func (a *Account) IsDC() bool { return a.Type == TypeComputer && a.InGroup("Domain Controllers") }

// UserAccountControl is the account's userAccountControl as AD stores it.
func (a *Account) UserAccountControl() uint32 {
	var u uint32
	switch {
	case a.IsDC():
		u = UACServerTrustAccount
	case a.Type == TypeComputer:
		u = UACWorkstationTrustAccount
	case a.Type == TypeService:
		u = UACNormalAccount | UACDontExpirePassword // the seed's 0x10200
	default:
		u = UACNormalAccount
	}
	if a.Disabled || a.Type == TypeKrbtgt {
		u |= UACAccountDisable // krbtgt is disabled for logons (514)
	}
	if a.Delegation.Mode == DelegUnconstrained {
		u |= UACTrustedForDelegation
	}
	if a.Delegation.ProtocolTransition {
		u |= UACTrustedToAuthForDelegation
	}
	if a.Sensitive {
		u |= UACNotDelegated
	}
	if a.DontRequirePreauth {
		u |= UACDontRequirePreauth
	}
	if a.NoAuthDataRequired {
		u |= UACNoAuthDataRequired
	}
	if a.RODC != nil && a.RODC.PartialSecrets {
		u |= UACPartialSecretsAccount
	}
	return u
}

// SetUserAccountControl applies a userAccountControl write with AD's rules:
// the account type bits cannot change (ERROR_DS_UNWILLING_TO_PERFORM on a
// type change), TRUSTED_FOR_DELEGATION is unconstrained delegation, clearing
// it leaves constrained delegation when msDS-AllowedToDelegateTo is set.
func (a *Account) SetUserAccountControl(u uint32) error {
	if a.Type == TypeKrbtgt {
		return fmt.Errorf("the krbtgt account's userAccountControl is not writable in the lab")
	}
	if u&uacTypeBits != a.UserAccountControl()&uacTypeBits {
		return fmt.Errorf("userAccountControl 0x%x changes the account type of %s (0x%x)", u, a.Name, a.UserAccountControl()&uacTypeBits)
	}
	a.Disabled = u&UACAccountDisable != 0
	a.Sensitive = u&UACNotDelegated != 0
	a.DontRequirePreauth = u&UACDontRequirePreauth != 0
	a.NoAuthDataRequired = u&UACNoAuthDataRequired != 0
	if u&UACPartialSecretsAccount != 0 && a.Type == TypeComputer {
		if a.RODC == nil {
			a.RODC = &RODC{}
		}
		a.RODC.PartialSecrets = true
	} else if a.RODC != nil {
		a.RODC.PartialSecrets = false
	}
	a.Delegation.ProtocolTransition = u&UACTrustedToAuthForDelegation != 0
	switch {
	case u&UACTrustedForDelegation != 0:
		a.Delegation.Mode = DelegUnconstrained
	case len(a.Delegation.AllowedTo) > 0:
		a.Delegation.Mode = DelegConstrained
	default:
		a.Delegation.Mode = DelegNone
	}
	return nil
}

// SetAllowedToDelegateTo writes msDS-AllowedToDelegateTo: a non-empty list is
// constrained delegation unless the account is trusted for unconstrained.
func (a *Account) SetAllowedToDelegateTo(spns []string) {
	a.Delegation.AllowedTo = append([]string(nil), spns...)
	if a.Delegation.Mode == DelegUnconstrained {
		return
	}
	if len(spns) > 0 {
		a.Delegation.Mode = DelegConstrained
	} else {
		a.Delegation.Mode = DelegNone
	}
}

// msDS-SupportedEncryptionTypes bits (MS-KILE 2.2.7).
const (
	SETRC4    = 0x4
	SETAES128 = 0x8
	SETAES256 = 0x10
)

// SupportedEncryptionTypes is msDS-SupportedEncryptionTypes; an account with
// no setting shows what the lab's AES-only domain uses for it.
func (a *Account) SupportedEncryptionTypes(allowRC4 bool) uint32 {
	var u uint32
	for _, e := range a.ETypes(allowRC4) {
		switch ETypeName(e) {
		case "rc4":
			u |= SETRC4
		case "aes128":
			u |= SETAES128
		case "aes256":
			u |= SETAES256
		}
	}
	return u
}

// SetSupportedEncryptionTypes writes msDS-SupportedEncryptionTypes; bits the
// lab has no keys for (DES) are refused. The feature bits above the etypes
// (MS-KILE 2.2.7: AES256-SK 0x20, FAST 0x10000, compound identity 0x20000,
// claims 0x40000, resource SID compression 0x80000) are taken and not kept.
func (a *Account) SetSupportedEncryptionTypes(u uint32) error {
	if u&0x3 != 0 {
		return fmt.Errorf("msDS-SupportedEncryptionTypes 0x%x: DES (0x1, 0x2): the lab has AES and RC4 keys only", u)
	}
	var names []string
	if u&SETAES256 != 0 {
		names = append(names, "aes256")
	}
	if u&SETAES128 != 0 {
		names = append(names, "aes128")
	}
	if u&SETRC4 != 0 {
		names = append(names, "rc4")
	}
	a.Enctypes = names
	return nil
}

// HostName is the dNSHostName of a computer account (its host in the lab).
func (l *Lab) HostName(a *Account) string {
	for _, h := range l.Hosts {
		if strings.EqualFold(h.Account, a.Name) {
			return h.Name
		}
	}
	if a.Type == TypeComputer {
		return strings.ToLower(strings.TrimSuffix(a.Name, "$")) + "." + strings.ToLower(l.Realm)
	}
	return ""
}

// DomainDN is the naming context, DC=lab,DC=local.
func (l *Lab) DomainDN() string { return l.domainDN() }
