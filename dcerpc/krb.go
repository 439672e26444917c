package dcerpc

import "errors"

// krbContext is a Kerberos context (bare, or chosen inside SPNEGO).
type krbContext struct{}

// krbRefused is a refused AP-REQ, with what the 4625 names.
type krbRefused struct{ status, reason, client string }

func (e *krbRefused) Error() string { return e.reason }

func (s *secContext) kerberosStep(tok []byte) ([]byte, error) {
	return nil, &errAuthFailed{errors.New("Kerberos is not accepted on this endpoint yet")}
}

func (k *krbContext) sigLen() int { return 0 }
func (k *krbContext) verify(raw []byte, from, to int, sig []byte, hdrSign, privacy bool) error {
	return errors.New("no Kerberos context")
}
func (k *krbContext) protect(raw []byte, from, to int, hdrSign, privacy bool) ([]byte, error) {
	return nil, errors.New("no Kerberos context")
}
