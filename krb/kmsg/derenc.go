package kmsg

import (
	"errors"
	"reflect"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Hand-written DER encoders for the messages a KDC writes on every request.
// They produce exactly the bytes gofork's asn1.Marshal produces for the same
// gokrb5 structs (derenc_test.go compares them on many varied values): the
// PAC ticket signature covers the DER EncTicketPart, and every peer re-decodes
// what we send. gofork's rules they follow:
//   - an optional field is omitted when it equals its zero value (a nil slice,
//     the zero time.Time, 0); a non-nil empty slice is encoded;
//   - integers are minimal two's complement; lengths are minimal, long form
//     from 128;
//   - realms and name strings are GeneralString with the raw bytes;
//   - KerberosTime is GeneralizedTime "YYYYMMDDHHMMSS" followed by Z, or by
//     ±hhmm when the time's zone is not UTC; years outside 0..9999 are an error;
//   - a BIT STRING is its padding-bit count, then Bytes as they are;
//   - inside an optional SEQUENCE OF field (caddr, authorization-data,
//     padata), gofork passes "optional" on to the elements, so an element
//     equal to its zero value is dropped from the sequence.

var errDERTime = errors.New("asn1: structure error: cannot represent time as GeneralizedTime")

// derEnc appends DER to b. Constructed elements are opened with a one-byte
// length and closed when their content is known; a long length shifts the
// content right by a few bytes.
type derEnc struct {
	b   []byte
	err error
}

func (e *derEnc) open(id byte) int {
	e.b = append(e.b, id, 0)
	return len(e.b)
}

func (e *derEnc) close(start int) {
	n := len(e.b) - start
	if n < 0x80 {
		e.b[start-1] = byte(n)
		return
	}
	k := 1
	for m := n >> 8; m > 0; m >>= 8 {
		k++
	}
	for i := 0; i < k; i++ {
		e.b = append(e.b, 0)
	}
	copy(e.b[start+k:], e.b[start:start+n])
	e.b[start-1] = 0x80 | byte(k)
	for i := k - 1; i >= 0; i-- {
		e.b[start+i] = byte(n)
		n >>= 8
	}
}

// header writes a primitive element's identifier and length.
func (e *derEnc) header(id byte, n int) {
	e.b = append(e.b, id)
	switch {
	case n < 0x80:
		e.b = append(e.b, byte(n))
	case n < 0x100:
		e.b = append(e.b, 0x81, byte(n))
	case n < 0x10000:
		e.b = append(e.b, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		e.b = append(e.b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		e.b = append(e.b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func (e *derEnc) int(v int64) {
	n := 1
	for i := v; i > 127; i >>= 8 {
		n++
	}
	for i := v; i < -128; i >>= 8 {
		n++
	}
	e.b = append(e.b, 0x02, byte(n))
	for ; n > 0; n-- {
		e.b = append(e.b, byte(v>>uint((n-1)*8)))
	}
}

func (e *derEnc) octets(p []byte) {
	e.header(0x04, len(p))
	e.b = append(e.b, p...)
}

func (e *derEnc) generalString(s string) {
	e.header(0x1b, len(s))
	e.b = append(e.b, s...)
}

func (e *derEnc) bitString(f asn1.BitString) {
	e.header(0x03, 1+len(f.Bytes))
	e.b = append(e.b, byte((8-f.BitLength%8)%8))
	e.b = append(e.b, f.Bytes...)
}

func two(b []byte, v int) []byte { return append(b, byte('0'+(v/10)%10), byte('0'+v%10)) }

func (e *derEnc) generalizedTime(t time.Time) {
	year := t.Year()
	if year < 0 || year > 9999 {
		if e.err == nil {
			e.err = errDERTime
		}
		return
	}
	s := e.open(0x18)
	e.b = append(e.b, byte('0'+year/1000), byte('0'+(year/100)%10), byte('0'+(year/10)%10), byte('0'+year%10))
	_, month, day := t.Date()
	hour, min, sec := t.Clock()
	e.b = two(two(two(two(two(e.b, int(month)), day), hour), min), sec)
	_, offset := t.Zone()
	switch {
	case offset/60 == 0:
		e.b = append(e.b, 'Z')
	default:
		if offset > 0 {
			e.b = append(e.b, '+')
		} else {
			e.b = append(e.b, '-')
		}
		m := offset / 60
		if m < 0 {
			m = -m
		}
		e.b = two(two(e.b, m/60), m%60)
	}
	e.close(s)
}

// Context-tagged (EXPLICIT) fields.

func (e *derEnc) ctxInt(tag int, v int64) {
	s := e.open(0xa0 | byte(tag))
	e.int(v)
	e.close(s)
}

func (e *derEnc) ctxOctets(tag int, p []byte) {
	s := e.open(0xa0 | byte(tag))
	e.octets(p)
	e.close(s)
}

func (e *derEnc) ctxString(tag int, v string) {
	s := e.open(0xa0 | byte(tag))
	e.generalString(v)
	e.close(s)
}

func (e *derEnc) ctxTime(tag int, t time.Time) {
	s := e.open(0xa0 | byte(tag))
	e.generalizedTime(t)
	e.close(s)
}

func (e *derEnc) ctxBits(tag int, f asn1.BitString) {
	s := e.open(0xa0 | byte(tag))
	e.bitString(f)
	e.close(s)
}

// Kerberos types (RFC 4120 §5.2, §5.3, §5.4.2).

func (e *derEnc) principalName(pn types.PrincipalName) {
	s := e.open(0x30)
	e.ctxInt(0, int64(pn.NameType))
	c := e.open(0xa1)
	q := e.open(0x30)
	for _, n := range pn.NameString {
		e.generalString(n)
	}
	e.close(q)
	e.close(c)
	e.close(s)
}

func (e *derEnc) encryptionKey(k types.EncryptionKey) {
	s := e.open(0x30)
	e.ctxInt(0, int64(k.KeyType))
	e.ctxOctets(1, k.KeyValue)
	e.close(s)
}

func (e *derEnc) encryptedData(ed types.EncryptedData) {
	s := e.open(0x30)
	e.ctxInt(0, int64(ed.EType))
	if ed.KVNO != 0 {
		e.ctxInt(1, int64(ed.KVNO))
	}
	e.ctxOctets(2, ed.Cipher)
	e.close(s)
}

// typedOctetsSeq writes SEQUENCE OF SEQUENCE { [t0] Int32, [t0+1] OCTET
// STRING }, the shape HostAddresses, AuthorizationData and METHOD-DATA share
// (RFC 4120 §5.2.5, §5.2.6, §5.2.7). With optional, all-zero elements are
// left out, as gofork does.
func typedOctetsSeq[T any](e *derEnc, items []T, t0 int, optional bool, get func(T) (int32, []byte)) {
	s := e.open(0x30)
	for _, it := range items {
		typ, data := get(it)
		if optional && typ == 0 && data == nil {
			continue
		}
		q := e.open(0x30)
		e.ctxInt(t0, int64(typ))
		e.ctxOctets(t0+1, data)
		e.close(q)
	}
	e.close(s)
}

func hostAddr(h types.HostAddress) (int32, []byte)           { return h.AddrType, h.Address }
func adEntry(a types.AuthorizationDataEntry) (int32, []byte) { return a.ADType, a.ADData }
func paEntry(p types.PAData) (int32, []byte)                 { return p.PADataType, p.PADataValue }

func (e *derEnc) hostAddresses(a []types.HostAddress, optional bool) {
	typedOctetsSeq(e, a, 0, optional, hostAddr)
}

func (e *derEnc) authorizationData(ad types.AuthorizationData, optional bool) {
	typedOctetsSeq(e, ad, 0, optional, adEntry)
}

func (e *derEnc) paData(pas []types.PAData, optional bool) {
	typedOctetsSeq(e, pas, 1, optional, paEntry)
}

func (e *derEnc) lastReqs(lr []messages.LastReq) {
	s := e.open(0x30)
	for _, l := range lr {
		q := e.open(0x30)
		e.ctxInt(0, int64(l.LRType))
		e.ctxTime(1, l.LRValue)
		e.close(q)
	}
	e.close(s)
}

// encTicketPart writes EncTicketPart [APPLICATION 3] (RFC 4120 §5.3).
func (e *derEnc) encTicketPart(t *messages.EncTicketPart) {
	a := e.open(0x60 | tagEncTicketPart)
	s := e.open(0x30)
	e.ctxBits(0, t.Flags)
	c := e.open(0xa1)
	e.encryptionKey(t.Key)
	e.close(c)
	e.ctxString(2, t.CRealm)
	c = e.open(0xa3)
	e.principalName(t.CName)
	e.close(c)
	c = e.open(0xa4)
	tr := e.open(0x30)
	e.ctxInt(0, int64(t.Transited.TRType))
	e.ctxOctets(1, t.Transited.Contents)
	e.close(tr)
	e.close(c)
	e.ticketTimes(t.AuthTime, t.StartTime, t.EndTime, t.RenewTill)
	if t.CAddr != nil {
		c = e.open(0xa9)
		e.hostAddresses(t.CAddr, true)
		e.close(c)
	}
	if t.AuthorizationData != nil {
		c = e.open(0xaa)
		e.authorizationData(t.AuthorizationData, true)
		e.close(c)
	}
	e.close(s)
	e.close(a)
}

// ticketTimes writes authtime [5], starttime [6] (optional), endtime [7] and
// renew-till [8] (optional): the same tags in EncTicketPart and EncKDCRepPart
// (RFC 4120 §5.3, §5.4.2).
func (e *derEnc) ticketTimes(auth, start, end, renew time.Time) {
	e.ctxTime(5, auth)
	if !start.IsZero() {
		e.ctxTime(6, start)
	}
	e.ctxTime(7, end)
	if !renew.IsZero() {
		e.ctxTime(8, renew)
	}
}

// encKDCRepPart writes EncASRepPart [APPLICATION 25] or EncTGSRepPart
// [APPLICATION 26] (RFC 4120 §5.4.2).
func (e *derEnc) encKDCRepPart(p *messages.EncKDCRepPart, tag int) {
	a := e.open(0x60 | byte(tag))
	s := e.open(0x30)
	c := e.open(0xa0)
	e.encryptionKey(p.Key)
	e.close(c)
	c = e.open(0xa1)
	e.lastReqs(p.LastReqs)
	e.close(c)
	e.ctxInt(2, int64(p.Nonce))
	if p.KeyExpiration != (time.Time{}) {
		e.ctxTime(3, p.KeyExpiration)
	}
	e.ctxBits(4, p.Flags)
	e.ticketTimes(p.AuthTime, p.StartTime, p.EndTime, p.RenewTill)
	e.ctxString(9, p.SRealm)
	c = e.open(0xaa)
	e.principalName(p.SName)
	e.close(c)
	if p.CAddr != nil {
		c = e.open(0xab)
		e.hostAddresses(p.CAddr, true)
		e.close(c)
	}
	if p.EncPAData != nil {
		c = e.open(0xac)
		e.paData(p.EncPAData, true)
		e.close(c)
	}
	e.close(s)
	e.close(a)
}

// ticket writes Ticket [APPLICATION 1] (RFC 4120 §5.3) without
// DecryptedEncPart: callers pass a cleaned ticket.
func (e *derEnc) ticket(t *messages.Ticket) {
	a := e.open(0x60 | tagTicket)
	s := e.open(0x30)
	e.ctxInt(0, int64(t.TktVNO))
	e.ctxString(1, t.Realm)
	c := e.open(0xa2)
	e.principalName(t.SName)
	e.close(c)
	c = e.open(0xa3)
	e.encryptedData(t.EncPart)
	e.close(c)
	e.close(s)
	e.close(a)
}

func (e *derEnc) result() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// encodeEncTicketPart is the DER EncTicketPart, as gofork writes it.
func encodeEncTicketPart(etp *messages.EncTicketPart) ([]byte, error) {
	e := derEnc{b: make([]byte, 0, 256+adSize(etp.AuthorizationData))}
	e.encTicketPart(etp)
	return e.result()
}

func adSize(ad types.AuthorizationData) int {
	n := 0
	for _, a := range ad {
		n += len(a.ADData) + 16
	}
	return n
}

// MarshalKDCRep encodes an AS-REP ([APPLICATION 11], msg-type 11) or TGS-REP
// ([APPLICATION 13], msg-type 13) from its fields (RFC 4120 §5.4.2), the bytes
// messages.ASRep/TGSRep.Marshal produce. The ticket is cleaned first
// (CleanTicket) and DecryptedEncPart of f is ignored.
func MarshalKDCRep(f messages.KDCRepFields) ([]byte, error) {
	var tag byte
	switch f.MsgType {
	case MsgASRep:
		tag = tagASRep
	case MsgTGSRep:
		tag = tagTGSRep
	default:
		return nil, errors.New("MarshalKDCRep: msg-type is neither AS-REP nor TGS-REP")
	}
	e := derEnc{b: make([]byte, 0, 512+len(f.Ticket.EncPart.Cipher)+len(f.EncPart.Cipher))}
	a := e.open(0x60 | tag)
	s := e.open(0x30)
	e.ctxInt(0, int64(f.PVNO))
	e.ctxInt(1, int64(f.MsgType))
	if f.PAData != nil {
		c := e.open(0xa2)
		e.paData(f.PAData, true)
		e.close(c)
	}
	e.ctxString(3, f.CRealm)
	c := e.open(0xa4)
	e.principalName(f.CName)
	e.close(c)
	c = e.open(0xa5)
	e.ticket(&f.Ticket)
	e.close(c)
	c = e.open(0xa6)
	e.encryptedData(f.EncPart)
	e.close(c)
	e.close(s)
	e.close(a)
	return e.result()
}

// MarshalEncryptedData encodes an EncryptedData (RFC 4120 §5.2.9).
func MarshalEncryptedData(ed types.EncryptedData) []byte {
	e := derEnc{b: make([]byte, 0, 16+len(ed.Cipher))}
	e.encryptedData(ed)
	return e.b
}

// MarshalAuthorizationData encodes AuthorizationData (RFC 4120 §5.2.6).
func MarshalAuthorizationData(ad types.AuthorizationData) []byte {
	e := derEnc{b: make([]byte, 0, 16+adSize(ad))}
	e.authorizationData(ad, false)
	return e.b
}

// MarshalPAData encodes a SEQUENCE OF PA-DATA (RFC 4120 §5.2.7).
func MarshalPAData(pas types.PADataSequence) []byte {
	n := 8
	for _, p := range pas {
		n += len(p.PADataValue) + 16
	}
	e := derEnc{b: make([]byte, 0, n)}
	e.paData(pas, false)
	return e.b
}

func (e *derEnc) checksum(c types.Checksum) {
	s := e.open(0x30)
	e.ctxInt(0, int64(c.CksumType))
	e.ctxOctets(1, c.Checksum)
	e.close(s)
}

// encodeKDCReqBody is KDCReqBody.Marshal for a body without additional
// tickets; ok is false when it has some (the caller uses gokrb5 then).
func encodeKDCReqBody(k *messages.KDCReqBody) ([]byte, bool, error) {
	for i := range k.AdditionalTickets {
		if !reflect.ValueOf(k.AdditionalTickets[i].DecryptedEncPart).IsZero() {
			return nil, false, nil // gokrb5 decides what such a ticket encodes to
		}
	}
	e := derEnc{b: make([]byte, 0, 256)}
	s := e.open(0x30)
	e.ctxBits(0, k.KDCOptions)
	if k.CName.NameType != 0 || k.CName.NameString != nil {
		c := e.open(0xa1)
		e.principalName(k.CName)
		e.close(c)
	}
	e.ctxString(2, k.Realm)
	if k.SName.NameType != 0 || k.SName.NameString != nil {
		c := e.open(0xa3)
		e.principalName(k.SName)
		e.close(c)
	}
	if k.From != (time.Time{}) {
		e.ctxTime(4, k.From)
	}
	e.ctxTime(5, k.Till)
	if k.RTime != (time.Time{}) {
		e.ctxTime(6, k.RTime)
	}
	e.ctxInt(7, int64(k.Nonce))
	c := e.open(0xa8)
	q := e.open(0x30)
	for _, et := range k.EType {
		e.int(int64(et))
	}
	e.close(q)
	e.close(c)
	if k.Addresses != nil {
		c = e.open(0xa9)
		e.hostAddresses(k.Addresses, true)
		e.close(c)
	}
	if ed := k.EncAuthData; ed.EType != 0 || ed.KVNO != 0 || ed.Cipher != nil {
		c = e.open(0xaa)
		e.encryptedData(ed)
		e.close(c)
	}
	if len(k.AdditionalTickets) > 0 { // [11] SEQUENCE OF Ticket (S4U2Proxy's evidence)
		c = e.open(0xab)
		q = e.open(0x30)
		for i := range k.AdditionalTickets {
			e.ticket(&k.AdditionalTickets[i])
		}
		e.close(q)
		e.close(c)
	}
	e.close(s)
	b, err := e.result()
	return b, true, err
}

// marshalKDCReqBody encodes a KDC-REQ-BODY, the bytes of KDCReqBody.Marshal.
func marshalKDCReqBody(k messages.KDCReqBody) ([]byte, error) {
	if b, ok, err := encodeKDCReqBody(&k); ok {
		return b, err
	}
	return k.Marshal()
}

// marshalAuthenticator encodes an Authenticator [APPLICATION 2] (RFC 4120
// §5.5.1), the bytes of types.Authenticator.Marshal.
func marshalAuthenticator(a types.Authenticator) ([]byte, error) {
	e := derEnc{b: make([]byte, 0, 128+adSize(a.AuthorizationData))}
	ap := e.open(0x60 | tagAuthenticator)
	s := e.open(0x30)
	e.ctxInt(0, int64(a.AVNO))
	e.ctxString(1, a.CRealm)
	c := e.open(0xa2)
	e.principalName(a.CName)
	e.close(c)
	if a.Cksum.CksumType != 0 || a.Cksum.Checksum != nil {
		c = e.open(0xa3)
		e.checksum(a.Cksum)
		e.close(c)
	}
	e.ctxInt(4, int64(a.Cusec))
	e.ctxTime(5, a.CTime)
	if a.SubKey.KeyType != 0 || a.SubKey.KeyValue != nil {
		c = e.open(0xa6)
		e.encryptionKey(a.SubKey)
		e.close(c)
	}
	if a.SeqNumber != 0 {
		e.ctxInt(7, a.SeqNumber)
	}
	if a.AuthorizationData != nil {
		c = e.open(0xa8)
		e.authorizationData(a.AuthorizationData, true)
		e.close(c)
	}
	e.close(s)
	e.close(ap)
	return e.result()
}

// marshalPAEncTSEnc encodes PA-ENC-TS-ENC (RFC 4120 §5.2.7.2) as gofork does.
func marshalPAEncTSEnc(ts types.PAEncTSEnc) ([]byte, error) {
	e := derEnc{b: make([]byte, 0, 32)}
	s := e.open(0x30)
	e.ctxTime(0, ts.PATimestamp)
	if ts.PAUSec != 0 {
		e.ctxInt(1, int64(ts.PAUSec))
	}
	e.close(s)
	return e.result()
}

// marshalBitString encodes a KerberosFlags BIT STRING on its own (AP options).
func marshalBitString(f asn1.BitString) []byte {
	e := derEnc{b: make([]byte, 0, 8)}
	e.bitString(f)
	return e.b
}

// MarshalETypeInfo2 encodes PA-ETYPE-INFO2 (RFC 4120 §5.2.7.5), the bytes of
// asn1.Marshal(info).
func MarshalETypeInfo2(info types.ETypeInfo2) []byte {
	e := derEnc{b: make([]byte, 0, 32+48*len(info))}
	s := e.open(0x30)
	for _, x := range info {
		q := e.open(0x30)
		e.ctxInt(0, int64(x.EType))
		if x.Salt != "" {
			e.ctxString(1, x.Salt)
		}
		if x.S2KParams != nil {
			e.ctxOctets(2, x.S2KParams)
		}
		e.close(q)
	}
	e.close(s)
	return e.b
}
