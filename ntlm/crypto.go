package ntlm

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"github.com/doublehop/doublehop/dtyp"
	"strings"

	"golang.org/x/crypto/md4"
)

// NTHash is NTOWFv1: MD4 of the UTF-16LE password (MS-NLMP 3.3.1), the
// secret AD keeps for NTLM (unicodePwd).
func NTHash(password string) []byte {
	h := md4.New()
	h.Write(dtyp.UTF16LE(password))
	return h.Sum(nil)
}

func hmacMD5(key []byte, parts ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// NTOWFv2 is HMAC_MD5(NTHash, UNICODE(Uppercase(User) + UserDom)) (MS-NLMP 3.3.2).
func NTOWFv2(ntHash []byte, user, domain string) []byte {
	return hmacMD5(ntHash, dtyp.UTF16LE(strings.ToUpper(user)+domain))
}

// temp is the NTLMv2 client blob (MS-NLMP 2.2.2.7, NTLMv2_CLIENT_CHALLENGE):
// versions, reserved, time, client challenge, reserved, AV pairs, reserved.
func temp(ts uint64, clientChallenge [8]byte, targetInfo []byte) []byte {
	b := []byte{1, 1, 0, 0, 0, 0, 0, 0}
	b = binary.LittleEndian.AppendUint64(b, ts)
	b = append(b, clientChallenge[:]...)
	b = append(b, 0, 0, 0, 0)
	b = append(b, targetInfo...)
	return append(b, 0, 0, 0, 0)
}

// ResponseV2 computes the NTLMv2 and LMv2 responses and the session base key
// for a challenge (MS-NLMP 3.3.2). targetInfo is the AV pair list exactly as
// the client puts it in its blob (MsvAvEOL included).
func ResponseV2(responseKey []byte, serverChallenge, clientChallenge [8]byte, ts uint64, targetInfo []byte) (nt, lm, sessionBaseKey []byte) {
	blob := temp(ts, clientChallenge, targetInfo)
	proof := hmacMD5(responseKey, serverChallenge[:], blob)
	nt = append(proof, blob...)
	lm = append(hmacMD5(responseKey, serverChallenge[:], clientChallenge[:]), clientChallenge[:]...)
	return nt, lm, hmacMD5(responseKey, proof)
}

// rc4K encrypts or decrypts data with key (one-shot).
func rc4K(key, data []byte) []byte {
	c, _ := rc4.NewCipher(key)
	out := make([]byte, len(data))
	c.XORKeyStream(out, data)
	return out
}

// ExportedSessionKey derives the session key both sides use (MS-NLMP 3.1.5.1.2,
// 3.2.5.1.2): for NTLMv2 KeyExchangeKey is the session base key; with
// KEY_EXCH the client's random key travels RC4-encrypted under it.
func ExportedSessionKey(flags uint32, sessionBaseKey, encryptedRandomSessionKey []byte) []byte {
	if flags&FlagKeyExch != 0 && len(encryptedRandomSessionKey) == 16 {
		return rc4K(sessionBaseKey, encryptedRandomSessionKey)
	}
	return sessionBaseKey
}

// MIC is HMAC_MD5(ExportedSessionKey, NEGOTIATE + CHALLENGE + AUTHENTICATE)
// with the AUTHENTICATE's MIC field zeroed (MS-NLMP 3.1.5.1.2).
func MIC(exportedSessionKey, negotiate, challenge, authenticateNoMIC []byte) []byte {
	return hmacMD5(exportedSessionKey, negotiate, challenge, authenticateNoMIC)
}

// Session is the message security of an established context (MS-NLMP 3.4)
// with extended session security, as SPNEGO's mechListMIC uses it.
type Session struct {
	flags                  uint32
	exported               []byte
	clientSign, serverSign []byte
	clientSeal, serverSeal *rc4.Cipher
}

const (
	c2sSign = "session key to client-to-server signing key magic constant\x00"
	s2cSign = "session key to server-to-client signing key magic constant\x00"
	c2sSeal = "session key to client-to-server sealing key magic constant\x00"
	s2cSeal = "session key to server-to-client sealing key magic constant\x00"
)

func md5s(a []byte, b string) []byte {
	h := md5.Sum(append(append([]byte(nil), a...), b...))
	return h[:]
}

// NewSession derives the signing and sealing keys (MS-NLMP 3.4.5.2, 3.4.5.3;
// 128-bit keys).
func NewSession(flags uint32, exportedSessionKey []byte) *Session {
	sealKey := func(magic string) *rc4.Cipher {
		k := exportedSessionKey
		switch {
		case flags&Flag128 != 0:
		case flags&Flag56 != 0:
			k = k[:7]
		default:
			k = k[:5]
		}
		c, _ := rc4.NewCipher(md5s(k, magic))
		return c
	}
	return &Session{flags: flags, exported: exportedSessionKey,
		clientSign: md5s(exportedSessionKey, c2sSign), serverSign: md5s(exportedSessionKey, s2cSign),
		clientSeal: sealKey(c2sSeal), serverSeal: sealKey(s2cSeal)}
}

func (s *Session) mac(signKey []byte, seal *rc4.Cipher, seq uint32, msg []byte) []byte {
	var sq [4]byte
	binary.LittleEndian.PutUint32(sq[:], seq)
	ck := hmacMD5(signKey, sq[:], msg)[:8]
	if s.flags&FlagKeyExch != 0 {
		seal.XORKeyStream(ck, ck)
	}
	sig := []byte{1, 0, 0, 0}
	sig = append(sig, ck...)
	return append(sig, sq[:]...)
}

// ClientMAC signs msg as the client does (GSS_GetMIC, MS-NLMP 3.4.4.2).
func (s *Session) ClientMAC(seq uint32, msg []byte) []byte {
	return s.mac(s.clientSign, s.clientSeal, seq, msg)
}

// ServerMAC signs msg as the server does.
func (s *Session) ServerMAC(seq uint32, msg []byte) []byte {
	return s.mac(s.serverSign, s.serverSeal, seq, msg)
}

// VerifyClientMAC checks a client signature over msg.
func (s *Session) VerifyClientMAC(seq uint32, msg, sig []byte) bool {
	return len(sig) == 16 && hmac.Equal(s.ClientMAC(seq, msg), sig)
}

// VerifyServerMAC checks a server signature over msg.
func (s *Session) VerifyServerMAC(seq uint32, msg, sig []byte) bool {
	return len(sig) == 16 && hmac.Equal(s.ServerMAC(seq, msg), sig)
}

// Seal and Unseal are GSS_WrapEx and GSS_UnwrapEx with confidentiality
// (MS-NLMP 3.4.3): the message goes through the direction's RC4 stream, then
// its signature (over the plaintext) through the same stream. Sign and
// Verify are the integrity-only form (3.4.4). The server seals with its keys
// and unseals with the client's; seq is the direction's sequence number.
func (s *Session) Seal(seq uint32, msg []byte) (sealed, sig []byte) {
	sealed = make([]byte, len(msg))
	s.serverSeal.XORKeyStream(sealed, msg)
	return sealed, s.mac(s.serverSign, s.serverSeal, seq, msg)
}

// Unseal decrypts a client's sealed message and checks its signature.
func (s *Session) Unseal(seq uint32, sealed, sig []byte) ([]byte, bool) {
	msg := make([]byte, len(sealed))
	s.clientSeal.XORKeyStream(msg, sealed)
	return msg, len(sig) == 16 && hmac.Equal(s.mac(s.clientSign, s.clientSeal, seq, msg), sig)
}

// DecryptFromClient runs sealed data through the client-to-server RC4
// stream (in place), for protocols that sign more than they seal:
// DCE/RPC's packet privacy signs the whole PDU and seals only the stub
// (MS-RPCE 3.3.1.5.2.2). Check VerifyClientMAC over the signed bytes next:
// the checksum comes after the data in the same stream.
func (s *Session) DecryptFromClient(data []byte) { s.clientSeal.XORKeyStream(data, data) }

// EncryptToClient seals data (in place) with the server-to-client stream;
// ServerMAC over the signed plaintext follows.
func (s *Session) EncryptToClient(data []byte) { s.serverSeal.XORKeyStream(data, data) }

// ExportedKey is the session key the context agreed (MS-NLMP 3.1.5.1.2),
// what an application protocol derives its own keys from (DRSUAPI's
// secret attributes, SMB's signing). Secret: never log it.
func (s *Session) ExportedKey() []byte { return s.exported }

// Flags are the negotiated flags the session was made with.
func (s *Session) Flags() uint32 { return s.flags }

// Reset is the session with its RC4 streams back at the start, as SPNEGO
// leaves NTLM after a mechListMIC exchange (MS-SPNG 3.3.5.1, what Windows and
// Samba do when the AUTHENTICATE carried a MIC); sequence numbers are the
// caller's and go on.
func (s *Session) Reset() *Session { return NewSession(s.flags, s.exported) }
