package kmsg

import (
	"strconv"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Fast decoders for the messages a KDC reads on every request: KDC-REQ,
// EncTicketPart, AuthorizationData. They accept only canonical DER in the
// exact shape our peers send (minimal definite lengths, every EXPLICIT wrapper
// holding exactly one element, GeneralString strings, GeneralizedTime
// "YYYYMMDDHHMMSSZ", no unknown trailing elements) and then return what
// gofork's asn1.Unmarshal returns for the same bytes. Anything else reports
// !ok and the caller decodes with gofork as before, so unusual input keeps
// gofork's exact result or error. derdec_test.go checks both claims on
// random and mutated messages. The decoders never panic: every length is
// checked against its input.

// dec walks the elements of one constructed value. A failure sets bad and
// makes every later read fail too.
type dec struct {
	b   []byte
	bad bool
}

// readElem reads one element with a one-byte identifier and a minimal
// definite length of at most three bytes.
func readElem(b []byte) (id byte, content, full, rest []byte, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, nil, nil, nil, false
	}
	n, hl := int(b[1]), 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k || b[2] == 0 {
			return 0, nil, nil, nil, false
		}
		n = 0
		for i := 0; i < k; i++ {
			n = n<<8 | int(b[2+i])
		}
		if n < 0x80 {
			return 0, nil, nil, nil, false
		}
		hl = 2 + k
	}
	if n > len(b)-hl {
		return 0, nil, nil, nil, false
	}
	return b[0], b[hl : hl+n], b[:hl+n], b[hl+n:], true
}

// only reads b as exactly one element with identifier id.
func only(b []byte, id byte) ([]byte, bool) {
	got, c, _, rest, ok := readElem(b)
	if !ok || got != id || len(rest) != 0 {
		return nil, false
	}
	return c, true
}

func (d *dec) fail() { d.bad, d.b = true, nil }

// done reports success when every element was consumed.
func (d *dec) done() bool { return !d.bad && len(d.b) == 0 }

// field returns the single element inside the EXPLICIT [tag] wrapper that comes
// next, with its identifier; present is false when the next element has
// another identifier (an absent OPTIONAL field) or nothing is left. A
// required field that is absent is the caller's to fail.
func (d *dec) field(tag int) (id byte, content []byte, present bool) {
	if d.bad || len(d.b) == 0 || d.b[0] != 0xa0|byte(tag) {
		return 0, nil, false
	}
	_, w, _, rest, ok := readElem(d.b)
	if !ok {
		d.fail()
		return 0, nil, false
	}
	id, c, _, after, ok := readElem(w)
	if !ok || len(after) != 0 {
		d.fail()
		return 0, nil, false
	}
	d.b = rest
	return id, c, true
}

// need is field for a required element of identifier want.
func (d *dec) need(tag int, want byte) []byte {
	id, c, ok := d.field(tag)
	if !ok || id != want {
		d.fail()
		return nil
	}
	return c
}

// opt is field for an OPTIONAL element of identifier want.
func (d *dec) opt(tag int, want byte) ([]byte, bool) {
	id, c, ok := d.field(tag)
	if !ok {
		return nil, false
	}
	if id != want {
		d.fail()
		return nil, false
	}
	return c, true
}

// Primitive values, with gofork's checks.

func minimalInt(c []byte) bool {
	if len(c) == 0 {
		return false
	}
	return len(c) == 1 || !((c[0] == 0 && c[1]&0x80 == 0) || (c[0] == 0xff && c[1]&0x80 == 0x80))
}

func beInt(c []byte) int64 {
	v := int64(int8(c[0]))
	for _, x := range c[1:] {
		v = v<<8 | int64(x)
	}
	return v
}

func (d *dec) int32(c []byte) int32 {
	if d.bad || len(c) > 4 || !minimalInt(c) {
		d.fail()
		return 0
	}
	return int32(beInt(c))
}

// int decodes a Go int field: parseInt64 where int has 64 bits, parseInt32 otherwise.
func (d *dec) int(c []byte) int {
	max := 8
	if strconv.IntSize == 32 {
		max = 4
	}
	if d.bad || len(c) > max || !minimalInt(c) {
		d.fail()
		return 0
	}
	return int(beInt(c))
}

// octets copies an OCTET STRING; gofork returns a non-nil slice even when empty.
func octets(c []byte) []byte { return append(make([]byte, 0, len(c)), c...) }

func (d *dec) bits(c []byte) asn1.BitString {
	if d.bad || len(c) == 0 || c[0] > 7 || (len(c) == 1 && c[0] > 0) || c[len(c)-1]&((1<<c[0])-1) != 0 {
		d.fail()
		return asn1.BitString{}
	}
	return asn1.BitString{Bytes: octets(c[1:]), BitLength: (len(c)-1)*8 - int(c[0])}
}

// time decodes "YYYYMMDDHHMMSSZ" into the value time.Parse gives (UTC); other
// forms (offsets, fractions, out-of-range fields) are left to gofork.
func (d *dec) time(c []byte) time.Time {
	if d.bad || len(c) != 15 || c[14] != 'Z' {
		d.fail()
		return time.Time{}
	}
	var v [7]int
	w := [7]int{4, 2, 2, 2, 2, 2}
	p := 0
	for i := 0; i < 6; i++ {
		for j := 0; j < w[i]; j++ {
			x := c[p]
			if x < '0' || x > '9' {
				d.fail()
				return time.Time{}
			}
			v[i] = v[i]*10 + int(x-'0')
			p++
		}
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, time.UTC)
	if t.Year() != v[0] || int(t.Month()) != v[1] || t.Day() != v[2] || t.Hour() != v[3] || t.Minute() != v[4] || t.Second() != v[5] {
		d.fail() // time.Parse rejects what time.Date would normalise
		return time.Time{}
	}
	return t
}

// elems splits a SEQUENCE OF into its elements, each of identifier id.
func (d *dec) elems(c []byte, id byte) [][]byte {
	if d.bad {
		return nil
	}
	n := 0
	for b := c; len(b) > 0; n++ {
		got, _, _, rest, ok := readElem(b)
		if !ok || got != id {
			d.fail()
			return nil
		}
		b = rest
	}
	out := make([][]byte, 0, n)
	for b := c; len(b) > 0; {
		_, e, _, rest, _ := readElem(b)
		out = append(out, e)
		b = rest
	}
	return out
}

// Kerberos types.

func (d *dec) principalName(c []byte) types.PrincipalName {
	s := dec{b: c}
	var pn types.PrincipalName
	pn.NameType = s.int32(s.need(0, 0x02))
	parts := s.elems(s.need(1, 0x30), 0x1b)
	if !s.done() {
		d.fail()
		return types.PrincipalName{}
	}
	pn.NameString = make([]string, len(parts))
	for i, p := range parts {
		pn.NameString[i] = string(p)
	}
	return pn
}

// typedOctets decodes SEQUENCE { [t0] Int32, [t1] OCTET STRING }, the shape of
// EncryptionKey, HostAddress, AuthorizationData entries, PA-DATA and TransitedEncoding.
func (d *dec) typedOctets(c []byte, t0, t1 int) (int32, []byte) {
	s := dec{b: c}
	v := s.int32(s.need(t0, 0x02))
	o := s.need(t1, 0x04)
	if !s.done() {
		d.fail()
		return 0, nil
	}
	return v, octets(o)
}

func (d *dec) encryptionKey(c []byte) types.EncryptionKey {
	t, v := d.typedOctets(c, 0, 1)
	return types.EncryptionKey{KeyType: t, KeyValue: v}
}

func (d *dec) encryptedData(c []byte) types.EncryptedData {
	s := dec{b: c}
	var ed types.EncryptedData
	ed.EType = s.int32(s.need(0, 0x02))
	if k, ok := s.opt(1, 0x02); ok {
		ed.KVNO = s.int(k)
	}
	ed.Cipher = octets(s.need(2, 0x04))
	if !s.done() {
		d.fail()
		return types.EncryptedData{}
	}
	return ed
}

func (d *dec) hostAddresses(c []byte) []types.HostAddress {
	es := d.elems(c, 0x30)
	if d.bad {
		return nil
	}
	out := make([]types.HostAddress, len(es))
	for i, e := range es {
		out[i].AddrType, out[i].Address = d.typedOctets(e, 0, 1)
	}
	return out
}

func (d *dec) authorizationData(c []byte) types.AuthorizationData {
	es := d.elems(c, 0x30)
	if d.bad {
		return nil
	}
	out := make(types.AuthorizationData, len(es))
	for i, e := range es {
		out[i].ADType, out[i].ADData = d.typedOctets(e, 0, 1)
	}
	return out
}

func (d *dec) paData(c []byte) types.PADataSequence {
	es := d.elems(c, 0x30)
	if d.bad {
		return nil
	}
	out := make(types.PADataSequence, len(es))
	for i, e := range es {
		out[i].PADataType, out[i].PADataValue = d.typedOctets(e, 1, 2)
	}
	return out
}

// fastKDCReq decodes KDC-REQ (RFC 4120 §5.4.1) with application tag app as
// ParseKDCReq's gofork path does (rawKDCReq, then KDCReqBody.Unmarshal),
// returning pvno and msg-type unchecked.
func fastKDCReq(b []byte, app int) (pvno, msgType int, r *KDCReq, ok bool) {
	d, ok := appSeq(b, app)
	if !ok {
		return 0, 0, nil, false
	}
	pvno = d.int(d.need(1, 0x02))
	msgType = d.int(d.need(2, 0x02))
	r = &KDCReq{}
	if pa, ok := d.opt(3, 0x30); ok {
		r.PAData = d.paData(pa)
	}
	// The body: [4] holding exactly the KDC-REQ-BODY SEQUENCE, kept verbatim.
	if d.bad || len(d.b) == 0 || d.b[0] != 0xa4 {
		return 0, 0, nil, false
	}
	_, w, _, rest, ok := readElem(d.b)
	if !ok {
		return 0, 0, nil, false
	}
	_, body, full, after, ok := readElem(w)
	if !ok || len(after) != 0 || full[0] != 0x30 {
		return 0, 0, nil, false
	}
	d.b = rest
	if !d.done() {
		return 0, 0, nil, false
	}
	r.RawBody = full
	if !fastKDCReqBody(body, &r.Body) {
		return 0, 0, nil, false
	}
	r.MsgType = msgType
	return pvno, msgType, r, true
}

// fastKDCReqBody decodes the content of KDC-REQ-BODY as gokrb5's
// KDCReqBody.Unmarshal does (including its KDCOptions padding).
func fastKDCReqBody(c []byte, k *messages.KDCReqBody) bool {
	d := dec{b: c}
	k.KDCOptions = d.bits(d.need(0, 0x03))
	if v, ok := d.opt(1, 0x30); ok {
		k.CName = d.principalName(v)
	}
	k.Realm = string(d.need(2, 0x1b))
	if v, ok := d.opt(3, 0x30); ok {
		k.SName = d.principalName(v)
	}
	if v, ok := d.opt(4, 0x18); ok {
		k.From = d.time(v)
	}
	k.Till = d.time(d.need(5, 0x18))
	if v, ok := d.opt(6, 0x18); ok {
		k.RTime = d.time(v)
	}
	k.Nonce = d.int(d.need(7, 0x02))
	es := d.elems(d.need(8, 0x30), 0x02)
	if !d.bad {
		k.EType = make([]int32, len(es))
		for i, e := range es {
			k.EType[i] = d.int32(e)
		}
	}
	if v, ok := d.opt(9, 0x30); ok {
		k.Addresses = d.hostAddresses(v)
	}
	if v, ok := d.opt(10, 0x30); ok {
		k.EncAuthData = d.encryptedData(v)
	}
	if v, ok := d.opt(11, 0x30); ok && !d.bad { // additional-tickets (S4U2Proxy, user-to-user)
		if len(v) == 0 {
			return false // an empty SEQUENCE OF: gofork decides
		}
		for b := v; len(b) > 0; {
			_, _, full, rest, ok := readElem(b)
			if !ok {
				return false
			}
			t, ok := fastTicket(full)
			if !ok {
				return false
			}
			k.AdditionalTickets = append(k.AdditionalTickets, t)
			b = rest
		}
	}
	if !d.done() { // anything unexpected: gofork
		return false
	}
	if len(k.KDCOptions.Bytes) < 4 { // gokrb5 pads (at the front) to 32 bits
		tb := make([]byte, 4-len(k.KDCOptions.Bytes))
		k.KDCOptions.Bytes = append(tb, k.KDCOptions.Bytes...)
		k.KDCOptions.BitLength = len(k.KDCOptions.Bytes) * 8
	}
	return true
}

// fastEncTicketPart decodes EncTicketPart [APPLICATION 3] (RFC 4120 §5.3) as
// messages.EncTicketPart.Unmarshal does.
func fastEncTicketPart(b []byte) (messages.EncTicketPart, bool) {
	var t messages.EncTicketPart
	d, ok := appSeq(b, tagEncTicketPart)
	if !ok {
		return t, false
	}
	t.Flags = d.bits(d.need(0, 0x03))
	t.Key = d.encryptionKey(d.need(1, 0x30))
	t.CRealm = string(d.need(2, 0x1b))
	t.CName = d.principalName(d.need(3, 0x30))
	t.Transited.TRType, t.Transited.Contents = d.typedOctets(d.need(4, 0x30), 0, 1)
	t.AuthTime = d.time(d.need(5, 0x18))
	if v, ok := d.opt(6, 0x18); ok {
		t.StartTime = d.time(v)
	}
	t.EndTime = d.time(d.need(7, 0x18))
	if v, ok := d.opt(8, 0x18); ok {
		t.RenewTill = d.time(v)
	}
	if v, ok := d.opt(9, 0x30); ok {
		t.CAddr = d.hostAddresses(v)
	}
	if v, ok := d.opt(10, 0x30); ok {
		t.AuthorizationData = d.authorizationData(v)
	}
	if !d.done() {
		return messages.EncTicketPart{}, false
	}
	return t, true
}

// fastAuthorizationData decodes a whole AuthorizationData value.
func FastAuthorizationData(b []byte) (types.AuthorizationData, bool) {
	c, ok := only(b, 0x30)
	if !ok {
		return nil, false
	}
	d := dec{}
	ad := d.authorizationData(c)
	if d.bad {
		return nil, false
	}
	return ad, true
}

// fastTicket decodes a Ticket [APPLICATION 1] element as messages.Ticket.Unmarshal
// does when nothing follows enc-part (so DecryptedEncPart stays empty).
func fastTicket(b []byte) (messages.Ticket, bool) {
	var t messages.Ticket
	d, ok := appSeq(b, tagTicket)
	if !ok {
		return t, false
	}
	t.TktVNO = d.int(d.need(0, 0x02))
	t.Realm = string(d.need(1, 0x1b))
	t.SName = d.principalName(d.need(2, 0x30))
	t.EncPart = d.encryptedData(d.need(3, 0x30))
	if !d.done() {
		return messages.Ticket{}, false
	}
	return t, true
}

// fastKDCRep decodes AS-REP ([APPLICATION 11], msg-type 11) or TGS-REP
// ([APPLICATION 13], msg-type 13) as messages.ASRep/TGSRep.Unmarshal do.
func fastKDCRep(b []byte, app, msgType int) (messages.KDCRepFields, bool) {
	var f messages.KDCRepFields
	d, ok := appSeq(b, app)
	if !ok {
		return f, false
	}
	f.PVNO = d.int(d.need(0, 0x02))
	f.MsgType = d.int(d.need(1, 0x02))
	if v, ok := d.opt(2, 0x30); ok {
		f.PAData = d.paData(v)
	}
	f.CRealm = string(d.need(3, 0x1b))
	f.CName = d.principalName(d.need(4, 0x30))
	if d.bad || len(d.b) == 0 || d.b[0] != 0xa5 {
		return messages.KDCRepFields{}, false
	}
	_, w, _, rest, ok := readElem(d.b)
	if !ok {
		return messages.KDCRepFields{}, false
	}
	d.b = rest
	f.EncPart = d.encryptedData(d.need(6, 0x30))
	if !d.done() || f.MsgType != msgType {
		return messages.KDCRepFields{}, false
	}
	if f.Ticket, ok = fastTicket(w); !ok {
		return messages.KDCRepFields{}, false
	}
	return f, true
}

// fastEncKDCRepPart decodes EncASRepPart or EncTGSRepPart ([APPLICATION 25] or
// [APPLICATION 26]) as messages.EncKDCRepPart.Unmarshal does.
func fastEncKDCRepPart(b []byte) (messages.EncKDCRepPart, bool) {
	var p messages.EncKDCRepPart
	if len(b) == 0 || (b[0] != 0x60|tagEncASRepPart && b[0] != 0x60|tagEncTGSRepPart) {
		return p, false
	}
	c, ok := only(b, b[0])
	if !ok {
		return p, false
	}
	seq, ok := only(c, 0x30)
	if !ok {
		return p, false
	}
	d := dec{b: seq}
	p.Key = d.encryptionKey(d.need(0, 0x30))
	lrs := d.elems(d.need(1, 0x30), 0x30)
	if !d.bad {
		p.LastReqs = make([]messages.LastReq, len(lrs))
		for i, l := range lrs {
			s := dec{b: l}
			p.LastReqs[i].LRType = s.int32(s.need(0, 0x02))
			p.LastReqs[i].LRValue = s.time(s.need(1, 0x18))
			if !s.done() {
				d.fail()
			}
		}
	}
	p.Nonce = d.int(d.need(2, 0x02))
	if v, ok := d.opt(3, 0x18); ok {
		p.KeyExpiration = d.time(v)
	}
	p.Flags = d.bits(d.need(4, 0x03))
	p.AuthTime = d.time(d.need(5, 0x18))
	if v, ok := d.opt(6, 0x18); ok {
		p.StartTime = d.time(v)
	}
	p.EndTime = d.time(d.need(7, 0x18))
	if v, ok := d.opt(8, 0x18); ok {
		p.RenewTill = d.time(v)
	}
	p.SRealm = string(d.need(9, 0x1b))
	p.SName = d.principalName(d.need(10, 0x30))
	if v, ok := d.opt(11, 0x30); ok {
		p.CAddr = d.hostAddresses(v)
	}
	if v, ok := d.opt(12, 0x30); ok {
		p.EncPAData = d.paData(v)
	}
	if !d.done() {
		return messages.EncKDCRepPart{}, false
	}
	return p, true
}

// Fast decoders for callers outside this package (the KDC's PA-TGS-REQ and
// PA-ENC-TIMESTAMP). Each returns ok=false unless b is canonical DER of the
// expected shape; the caller then decodes with gokrb5 exactly as before, so
// results and errors are unchanged. When ok, the value equals what the
// gokrb5 method named in the comment returns (derdec_test.go).

// FastAPReq decodes an AP-REQ as messages.APReq.Unmarshal does.
func FastAPReq(b []byte) (messages.APReq, bool) {
	var a messages.APReq
	d, ok := appSeq(b, tagAPReq)
	if !ok {
		return a, false
	}
	a.PVNO = d.int(d.need(0, 0x02))
	a.MsgType = d.int(d.need(1, 0x02))
	a.APOptions = d.bits(d.need(2, 0x03))
	if d.bad || len(d.b) == 0 || d.b[0] != 0xa3 {
		return messages.APReq{}, false
	}
	_, w, _, rest, ok := readElem(d.b)
	if !ok {
		return messages.APReq{}, false
	}
	d.b = rest
	a.EncryptedAuthenticator = d.encryptedData(d.need(4, 0x30))
	if !d.done() || a.MsgType != MsgAPReq {
		return messages.APReq{}, false
	}
	if a.Ticket, ok = fastTicket(w); !ok {
		return messages.APReq{}, false
	}
	return a, true
}

// FastAuthenticator decodes an Authenticator [APPLICATION 2] as
// types.Authenticator.Unmarshal does.
func FastAuthenticator(b []byte) (types.Authenticator, bool) {
	var a types.Authenticator
	d, ok := appSeq(b, tagAuthenticator)
	if !ok {
		return a, false
	}
	a.AVNO = d.int(d.need(0, 0x02))
	a.CRealm = string(d.need(1, 0x1b))
	a.CName = d.principalName(d.need(2, 0x30))
	if v, ok := d.opt(3, 0x30); ok {
		a.Cksum.CksumType, a.Cksum.Checksum = d.typedOctets(v, 0, 1)
	}
	a.Cusec = d.int(d.need(4, 0x02))
	a.CTime = d.time(d.need(5, 0x18))
	if v, ok := d.opt(6, 0x30); ok {
		a.SubKey = d.encryptionKey(v)
	}
	if v, ok := d.opt(7, 0x02); ok {
		if d.bad || len(v) > 8 || !minimalInt(v) {
			d.fail()
		} else {
			a.SeqNumber = beInt(v)
		}
	}
	if v, ok := d.opt(8, 0x30); ok {
		a.AuthorizationData = d.authorizationData(v)
	}
	if !d.done() {
		return types.Authenticator{}, false
	}
	return a, true
}

// FastEncryptedData decodes a whole EncryptedData as types.EncryptedData.Unmarshal does.
func FastEncryptedData(b []byte) (types.EncryptedData, bool) {
	c, ok := only(b, 0x30)
	if !ok {
		return types.EncryptedData{}, false
	}
	d := dec{}
	ed := d.encryptedData(c)
	if d.bad {
		return types.EncryptedData{}, false
	}
	return ed, true
}

// FastPAEncTSEnc decodes PA-ENC-TS-ENC as types.PAEncTSEnc.Unmarshal does.
func FastPAEncTSEnc(b []byte) (types.PAEncTSEnc, bool) {
	var ts types.PAEncTSEnc
	c, ok := only(b, 0x30)
	if !ok {
		return ts, false
	}
	d := dec{b: c}
	ts.PATimestamp = d.time(d.need(0, 0x18))
	if v, ok := d.opt(1, 0x02); ok {
		ts.PAUSec = d.int(v)
	}
	if !d.done() {
		return types.PAEncTSEnc{}, false
	}
	return ts, true
}

// appSeq opens [APPLICATION tag] SEQUENCE { ... }, the shape of every
// Kerberos message (RFC 4120 §5.10), and returns a decoder over its fields.
func appSeq(b []byte, tag int) (dec, bool) {
	c, ok := only(b, 0x60|byte(tag))
	if !ok {
		return dec{}, false
	}
	seq, ok := only(c, 0x30)
	if !ok {
		return dec{}, false
	}
	return dec{b: seq}, true
}
