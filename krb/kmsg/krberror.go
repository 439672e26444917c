package kmsg

import (
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// AsKRBError decodes b as a KRB-ERROR ([APPLICATION 30]) and returns it as an
// *Error, or nil when b is not one.
func AsKRBError(b []byte) *kerr.Error {
	k, ok := ParseKRBError(b)
	if !ok {
		return nil
	}
	return kerr.FromKRBError(k)
}

// ParseKRBError decodes a KRB-ERROR without panicking.
func ParseKRBError(b []byte) (messages.KRBError, bool) {
	if len(b) == 0 || b[0] != 0x7e {
		return messages.KRBError{}, false
	}
	var k messages.KRBError
	if err := SafeUnmarshal(func() error { return k.Unmarshal(b) }); err != nil {
		return messages.KRBError{}, false
	}
	return k, true
}
