package directory

import (
	"fmt"
	"strings"
	"sync"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

var etypeByName = map[string]int32{
	"aes256": kcrypto.ETypeAES256SHA1, "aes256-cts-hmac-sha1-96": kcrypto.ETypeAES256SHA1,
	"aes128": kcrypto.ETypeAES128SHA1, "aes128-cts-hmac-sha1-96": kcrypto.ETypeAES128SHA1,
	"rc4": kcrypto.ETypeRC4HMAC, "rc4-hmac": kcrypto.ETypeRC4HMAC, "arcfour-hmac": kcrypto.ETypeRC4HMAC,
}

// ETypeName is the short name the lab file uses.
func ETypeName(e int32) string {
	switch e {
	case kcrypto.ETypeAES256SHA1:
		return "aes256"
	case kcrypto.ETypeAES128SHA1:
		return "aes128"
	case kcrypto.ETypeRC4HMAC:
		return "rc4"
	}
	return fmt.Sprint(e)
}

// ParseEType accepts lab and MIT names.
func ParseEType(s string) (int32, bool) {
	e, ok := etypeByName[strings.ToLower(s)]
	return e, ok
}

// ETypes is the account's supported enctypes in preference order
// (msDS-SupportedEncryptionTypes; AES by default). RC4 needs the lab's
// allow_rc4 policy too.
func (a *Account) ETypes(allowRC4 bool) []int32 {
	names := a.Enctypes
	if len(names) == 0 {
		names = []string{"aes256", "aes128"}
		if allowRC4 {
			names = append(names, "rc4")
		}
	}
	var out []int32
	for _, n := range names {
		e := etypeByName[strings.ToLower(n)]
		if e == kcrypto.ETypeRC4HMAC && !allowRC4 {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Salt is the AD salt for the account (MS-KILE 3.1.1.2): REALM + sAMAccountName
// for users and service accounts, REALM + "host" + name without "$" (lower
// case) + "." + realm (lower case) for computers, REALM + "krbtgt".
func (a *Account) Salt(realm string) string {
	switch a.Type {
	case TypeComputer:
		return realm + "host" + strings.ToLower(strings.TrimSuffix(a.Name, "$")) + "." + strings.ToLower(realm)
	default:
		// A user with a userPrincipalName is salted with its prefix, as
		// Windows derives the keys (what Samba's suite expects of a DC).
		if a.Type == TypeUser && a.UPN != "" {
			prefix := a.UPN
			if i := strings.LastIndex(prefix, "@"); i >= 0 {
				prefix = prefix[:i]
			}
			if prefix != "" {
				return realm + strings.ReplaceAll(prefix, "/", "")
			}
		}
		return realm + a.Name
	}
}

// keyCache remembers derived keys: PBKDF2 (4096 iterations) is slow, and a
// store rebuilds its index on every change.
type keyCache struct {
	mu sync.Mutex
	m  map[keyID]types.EncryptionKey
}

type keyID struct {
	password, salt string
	etype          int32
}

func (c *keyCache) get(password, salt string, etype int32) (types.EncryptionKey, error) {
	id := keyID{password, salt, etype}
	c.mu.Lock()
	k, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := kcrypto.StringToKey(password, salt, etype)
	if err != nil {
		return k, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[keyID]types.EncryptionKey{}
	}
	c.m[id] = k
	c.mu.Unlock()
	return k, nil
}
