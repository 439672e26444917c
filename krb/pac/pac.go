package pac

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/doublehop/doublehop/dcerpc/ndr"
	"github.com/doublehop/doublehop/dtyp"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// MS-PAC: the Privilege Attribute Certificate a KDC puts in tickets, encoded,
// parsed (bounded, never panicking) and signed.
//
// KDC use:
//   - TGT: EncodePAC(info, krbtgtKey, krbtgtKey), then PACAuthorizationData.
//   - Service ticket: FindPAC in the TGT, ParsePAC, VerifyServerChecksum and
//     VerifyKDCChecksum with the krbtgt key, optionally SetDelegation (S4U2Proxy)
//     or RemoveBuffer, then SignTicket(&etp, serviceKey, krbtgtKey) once every
//     other field of etp is final: it adds the ticket signature and stores the
//     PAC in etp.AuthorizationData, replacing the copied TGT PAC.
//   - S4U2Proxy evidence ticket: VerifyTicketSignature(etp, krbtgtKey).

// PAC buffer types (MS-PAC 2.4).
const (
	TypeLogonInfo      uint32 = 1
	TypeServerChecksum uint32 = 6
	TypeKDCChecksum    uint32 = 7
	TypeClientInfo     uint32 = 10
	TypeDelegationInfo uint32 = 11
	TypeUPNDNSInfo     uint32 = 12
	TypeTicketChecksum uint32 = 16
	TypeAttributesInfo uint32 = 17
	TypeRequestor      uint32 = 18
	TypeFullChecksum   uint32 = 19
)

// PAC_ATTRIBUTES_INFO flags (MS-PAC 2.14).
const (
	WasRequested       uint32 = 1
	WasGivenImplicitly uint32 = 2
)

const (
	groupAttrs     = 7    // SE_GROUP_MANDATORY|SE_GROUP_ENABLED_BY_DEFAULT|SE_GROUP_ENABLED (MS-PAC 2.2.1)
	logonExtraSIDs = 0x20 // UserFlags D: ExtraSids is populated (MS-PAC 2.5)
	upnDNSExtended = 0x2  // UPN_DNS_INFO S: SamName and Sid present (MS-PAC 2.10)
	filetimeNever  = 0x7fffffffffffffff
	filetimeEpoch  = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns units
)

// Errors of TicketSignatureInput and VerifyTicketSignature.
var (
	ErrNoPAC             = kmsg.ErrNoPAC
	ErrNoTicketSignature = errors.New("PAC has no ticket signature")
)

// PACInfo is what the KDC knows about a logon, turned into PAC buffers.
type Info struct {
	LogonTime          time.Time // KERB_VALIDATION_INFO LogonTime and PAC_CLIENT_INFO ClientId (the ticket authtime); parsed from ClientId
	EffectiveName      string    // sAMAccountName, e.g. "bob"
	FullName           string
	LogonServer        string // "DC"
	LogonDomainName    string // NetBIOS domain, "LAB"
	DomainSID          string // "S-1-5-21-1-2-3"
	UserRID            uint32
	PrimaryGroupRID    uint32   // 513
	GroupRIDs          []uint32 // domain groups (Windows lists the primary group here too), attributes 7
	ExtraSIDs          []string // e.g. "S-1-18-1" or "S-1-18-2" (S4U2Self); sets the UserFlags extra-SIDs bit
	UserAccountControl uint32
	UserFlags          uint32
	ClientName         string // PAC_CLIENT_INFO name (client principal name without realm)
	UPN                string // UPN_DNS_INFO
	DNSDomainName      string // "LAB.LOCAL"
	SamName            string // UPN_DNS_INFO extended (flag S): SamName + Sid
	UserSID            string // full user SID, for UPN_DNS_INFO extended
	Delegation         *S4UDelegationInfo
	Requestor          string // PAC_REQUESTOR SID when non-empty
	Attributes         uint32 // PAC_ATTRIBUTES_INFO flags
	// HasAttributes writes PAC_ATTRIBUTES_INFO even with no flag set (a
	// TGT whose client declined the PAC); a parsed PAC sets it when the
	// buffer is there.
	HasAttributes bool
}

// S4UDelegationInfo is S4U_DELEGATION_INFO (MS-PAC 2.9).
type S4UDelegationInfo struct {
	S4U2ProxyTarget   string
	TransitedServices []string
}

// PACBuffer is one PAC_INFO_BUFFER and its data (MS-PAC 2.4).
type Buffer struct {
	Type uint32
	Data []byte
}

// PAC is a parsed or built PAC. Info holds the decoded buffers; it is refreshed
// by ParsePAC and Sign. The Verify methods check the bytes last parsed or signed.
type PAC struct {
	Buffers []Buffer
	Info    Info

	raw                 []byte
	server, kdc, ticket sigField
}

// sigField locates the Signature of a PAC_SIGNATURE_DATA in raw; end is 0 when absent.
type sigField struct {
	typ      int32
	off, end int // the signature
	zend     int // the end of what is zeroed for the server signature: the RODCIdentifier too
	set      bool
}

// NewPAC builds the unsigned buffers for info: LOGON_INFO, CLIENT_INFO,
// UPN_DNS_INFO, and S4U_DELEGATION_INFO, PAC_ATTRIBUTES_INFO, PAC_REQUESTOR
// when set.
func New(info Info) (*PAC, error) {
	logon, err := encodeLogonInfo(info)
	if err != nil {
		return nil, err
	}
	client, err := encodeClientInfo(info)
	if err != nil {
		return nil, err
	}
	upn, err := encodeUPNDNSInfo(info)
	if err != nil {
		return nil, err
	}
	p := &PAC{Info: info, Buffers: []Buffer{{TypeLogonInfo, logon}, {TypeClientInfo, client}, {TypeUPNDNSInfo, upn}}}
	if err := p.SetDelegation(info.Delegation); err != nil {
		return nil, err
	}
	if info.Attributes != 0 || info.HasAttributes {
		p.SetBuffer(TypeAttributesInfo, binary.LittleEndian.AppendUint32([]byte{2, 0, 0, 0}, info.Attributes)) // FlagsLength 2 bits, Flags
	}
	if info.Requestor != "" {
		s, err := dtyp.ParseSID(info.Requestor)
		if err != nil {
			return nil, err
		}
		p.SetBuffer(TypeRequestor, s.Binary()) // MS-PAC 2.15: a SID structure
	}
	return p, nil
}

// EncodePAC builds and signs the PAC of a logon (no ticket signature: use
// NewPAC and SignTicket for service tickets).
func Encode(info Info, serverKey, kdcKey types.EncryptionKey) ([]byte, error) {
	p, err := New(info)
	if err != nil {
		return nil, err
	}
	return p.Sign(serverKey, kdcKey)
}

// SetBuffer replaces the buffers of type typ with one holding data.
func (p *PAC) SetBuffer(typ uint32, data []byte) {
	p.RemoveBuffer(typ)
	p.Buffers = append(p.Buffers, Buffer{typ, bytes.Clone(data)})
}

// RemoveBuffer drops the buffers of type typ, e.g. PAC_ATTRIBUTES_INFO and
// PAC_REQUESTOR, which belong only in TGTs (MS-KILE 3.3.5.6.4.7, 3.3.5.6.4.8).
func (p *PAC) RemoveBuffer(typ uint32) {
	p.Buffers = slices.DeleteFunc(p.Buffers, func(b Buffer) bool { return b.Type == typ })
}

// SetDelegation sets S4U_DELEGATION_INFO, or removes it when d is nil.
func (p *PAC) SetDelegation(d *S4UDelegationInfo) error {
	if d == nil {
		p.RemoveBuffer(TypeDelegationInfo)
		p.Info.Delegation = nil
		return nil
	}
	b, err := encodeDelegationInfo(*d)
	if err != nil {
		return err
	}
	p.SetBuffer(TypeDelegationInfo, b)
	c := S4UDelegationInfo{d.S4U2ProxyTarget, slices.Clone(d.TransitedServices)}
	p.Info.Delegation = &c
	return nil
}

// HasLogonInfo reports whether the PAC has a KERB_VALIDATION_INFO; MIT 1.20
// PACs have none and must still be accepted.
func (p *PAC) HasLogonInfo() bool {
	return slices.ContainsFunc(p.Buffers, func(b Buffer) bool { return b.Type == TypeLogonInfo })
}

// Sign lays the buffers out and signs them: server signature with serverKey,
// KDC signature with kdcKey. Old signature buffers (server, KDC, ticket, full)
// are dropped. It returns the PAC bytes and refreshes p from them.
func (p *PAC) Sign(serverKey, kdcKey types.EncryptionKey) ([]byte, error) {
	return p.sign(serverKey, kdcKey, nil)
}

// SignTicket signs p for the ticket whose encrypted part is etp and stores it
// in etp.AuthorizationData (replacing any PAC there), in the order of MS-PAC
// 2.8.1: the ticket signature first (MS-PAC 2.8.2 / 2.8.3 in older revisions,
// the CVE-2020-17049 fix: krbtgt key over the DER EncTicketPart whose PAC
// ad-data is a single zero byte), then the server and KDC signatures. Every
// other field of etp must be final. On error etp is unchanged.
func (p *PAC) SignTicket(etp *messages.EncTicketPart, serverKey, kdcKey types.EncryptionKey) error {
	t := *etp
	var err error
	if t.AuthorizationData, err = kmsg.SetPAC(etp.AuthorizationData, []byte{0}); err != nil {
		return err
	}
	in, err := kmsg.TicketSignatureInput(t)
	if err != nil {
		return err
	}
	sum, err := kcrypto.Checksum(kdcKey, kcrypto.UsagePACChecksum, in)
	if err != nil {
		return err
	}
	b, err := p.sign(serverKey, kdcKey, sum.Checksum)
	if err != nil {
		return err
	}
	ad, err := kmsg.SetPAC(etp.AuthorizationData, b)
	if err != nil {
		return err
	}
	etp.AuthorizationData = ad
	return nil
}

func (p *PAC) sign(serverKey, kdcKey types.EncryptionKey, ticketSig []byte) ([]byte, error) {
	srvType, srvLen, err := sigParams(serverKey)
	if err != nil {
		return nil, err
	}
	kdcType, kdcLen, err := sigParams(kdcKey)
	if err != nil {
		return nil, err
	}
	bufs := slices.DeleteFunc(slices.Clone(p.Buffers), func(b Buffer) bool { return isSignature(b.Type) })
	n := len(bufs)
	bufs = append(bufs, Buffer{TypeServerChecksum, sigData(srvType, make([]byte, srvLen))},
		Buffer{TypeKDCChecksum, sigData(kdcType, make([]byte, kdcLen))})
	if ticketSig != nil {
		bufs = append(bufs, Buffer{TypeTicketChecksum, sigData(kdcType, ticketSig)})
	}
	raw, offs := marshalPAC(bufs)
	// MS-PAC 2.8.4: over the whole PAC, server and KDC Signature fields zero (they still are).
	srv, err := kcrypto.Checksum(serverKey, kcrypto.UsagePACChecksum, raw)
	if err != nil {
		return nil, err
	}
	// MS-PAC 2.8.5: the KDC signature is over the server Signature field.
	kdc, err := kcrypto.Checksum(kdcKey, kcrypto.UsagePACChecksum, srv.Checksum)
	if err != nil {
		return nil, err
	}
	if len(srv.Checksum) != srvLen || len(kdc.Checksum) != kdcLen || (ticketSig != nil && len(ticketSig) != kdcLen) {
		return nil, errors.New("PAC: unexpected checksum length")
	}
	copy(raw[offs[n]+4:], srv.Checksum)
	copy(raw[offs[n+1]+4:], kdc.Checksum)
	q, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("PAC: signed PAC does not parse: %w", err)
	}
	*p = *q
	return raw, nil
}

// sigParams returns the PAC signature type and size for key: the checksum of
// its etype (MS-PAC 2.8).
func sigParams(key types.EncryptionKey) (int32, int, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return 0, 0, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "PAC signature key: %v", err)
	}
	return et.GetHashID(), et.GetHMACBitLength() / 8, nil
}

// sigData is a PAC_SIGNATURE_DATA without RODCIdentifier (MS-PAC 2.8).
func sigData(typ int32, sig []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(typ)), sig...)
}

func isSignature(typ uint32) bool {
	switch typ {
	case TypeServerChecksum, TypeKDCChecksum, TypeTicketChecksum, TypeFullChecksum:
		return true
	}
	return false
}

// marshalPAC writes PACTYPE and PAC_INFO_BUFFERs (MS-PAC 2.3, 2.4), each buffer
// at an 8-aligned offset, and returns the buffer offsets.
func marshalPAC(bufs []Buffer) ([]byte, []int) {
	size := 8 + 16*len(bufs)
	for _, b := range bufs {
		size += (len(b.Data) + 7) &^ 7
	}
	out := make([]byte, 8+16*len(bufs), size) // cBuffers, Version 0, Buffers
	binary.LittleEndian.PutUint32(out, uint32(len(bufs)))
	offs := make([]int, len(bufs))
	for i, b := range bufs {
		offs[i] = len(out)
		h := out[8+16*i:]
		binary.LittleEndian.PutUint32(h, b.Type)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(b.Data)))
		binary.LittleEndian.PutUint64(h[8:], uint64(len(out)))
		out = append(out, b.Data...)
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	return out, offs
}

// ParsePAC parses a PAC. Every count, size and offset is checked against b, so
// it never panics and allocates at most a few times len(b). The first buffer of
// each known type is decoded into Info (MS-PAC 2.4: later ones are ignored);
// duplicate signature buffers are an error.
func Parse(b []byte) (*PAC, error) {
	if len(b) < 8 {
		return nil, errors.New("PAC: truncated")
	}
	n, ver := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	if ver != 0 {
		return nil, fmt.Errorf("PAC: version %d", ver)
	}
	if n == 0 || uint64(n) > uint64(len(b)-8)/16 {
		return nil, fmt.Errorf("PAC: %d buffers do not fit in %d bytes", n, len(b))
	}
	hdr := 8 + 16*int(n)
	spans := make([][2]int, n)
	kinds := make([]uint32, n)
	for i := range spans {
		h := b[8+16*i:]
		typ, size, off := binary.LittleEndian.Uint32(h), uint64(binary.LittleEndian.Uint32(h[4:])), binary.LittleEndian.Uint64(h[8:])
		if off%8 != 0 || off < uint64(hdr) || off > uint64(len(b)) || size > uint64(len(b))-off {
			return nil, fmt.Errorf("PAC: buffer %d (type %d) has offset %d size %d in %d bytes", i, typ, off, size, len(b))
		}
		kinds[i], spans[i] = typ, [2]int{int(off), int(off + size)}
	}
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(x, y [2]int) int { return x[0] - y[0] })
	for i := 1; i < len(sorted); i++ {
		if sorted[i][0] < sorted[i-1][1] {
			return nil, errors.New("PAC: overlapping buffers")
		}
	}
	p := &PAC{raw: bytes.Clone(b), Buffers: make([]Buffer, n)}
	// One copy holds every buffer's data; each Data is capped at its own end,
	// so the buffers stay as independent of each other and of raw as separate copies.
	total := 0
	for _, s := range spans {
		total += s[1] - s[0]
	}
	data := make([]byte, 0, total)
	seen := make(map[uint32]bool, n)
	for i, s := range spans {
		at := len(data)
		data = append(data, b[s[0]:s[1]]...)
		buf := Buffer{kinds[i], data[at:len(data):len(data)]}
		p.Buffers[i] = buf
		if seen[buf.Type] {
			if isSignature(buf.Type) {
				return nil, fmt.Errorf("PAC: duplicate signature buffer type %d", buf.Type)
			}
			continue
		}
		seen[buf.Type] = true
		if err := p.decode(buf, s[0]); err != nil {
			return nil, fmt.Errorf("PAC buffer type %d: %w", buf.Type, err)
		}
	}
	return p, nil
}

func (p *PAC) decode(buf Buffer, off int) error {
	var err error
	switch buf.Type {
	case TypeLogonInfo:
		err = decodeLogonInfo(buf.Data, &p.Info)
	case TypeClientInfo:
		err = decodeClientInfo(buf.Data, &p.Info)
	case TypeUPNDNSInfo:
		err = decodeUPNDNSInfo(buf.Data, &p.Info)
	case TypeDelegationInfo:
		var d S4UDelegationInfo
		d, err = decodeDelegationInfo(buf.Data)
		p.Info.Delegation = &d
	case TypeAttributesInfo:
		p.Info.Attributes, err = decodeAttributes(buf.Data)
		p.Info.HasAttributes = true
	case TypeRequestor:
		p.Info.Requestor, err = dtyp.BinarySIDString(buf.Data)
	case TypeServerChecksum:
		p.server, err = parseSigField(buf.Data, off)
	case TypeKDCChecksum:
		p.kdc, err = parseSigField(buf.Data, off)
	case TypeTicketChecksum:
		p.ticket, err = parseSigField(buf.Data, off)
	}
	return err
}

// parseSigField reads a PAC_SIGNATURE_DATA at offset off of the PAC: the
// signature size follows from SignatureType; RODCIdentifier is optional (MS-PAC 2.8).
// A type this package does not know takes the rest of the buffer: the
// check (sigProblem) says what is wrong with it.
func parseSigField(d []byte, off int) (sigField, error) {
	if len(d) < 4 {
		return sigField{}, errors.New("short PAC_SIGNATURE_DATA")
	}
	typ := int32(binary.LittleEndian.Uint32(d))
	n := len(d) - 4
	if et, err := crypto.GetChksumEtype(typ); err == nil {
		if k := et.GetHMACBitLength() / 8; len(d) == 4+k || len(d) == 6+k {
			n = k
		}
	}
	return sigField{typ: typ, off: off + 4, end: off + 4 + n, zend: off + len(d), set: true}, nil
}

// SigProblem is what is wrong with a PAC signature.
type SigProblem int

// The problems a KDC tells apart (Windows answers each with its own code:
// Samba's s4u_tests, written against Windows DCs, record them).
const (
	SigMissing     SigProblem = iota + 1 // the signature buffer is absent
	SigUnknownType                       // a checksum type the KDC does not know
	SigWrongType                         // known, but not the key's keyed checksum (unkeyed, or RC4's under AES)
	SigMismatch                          // the right type, a wrong value
)

// SignatureError is a PAC signature that does not check (MS-PAC 2.8).
type SignatureError struct {
	Buffer  uint32 // TypeServerChecksum, TypeKDCChecksum, TypeTicketChecksum
	Problem SigProblem
	CkType  int32
}

func (e *SignatureError) Error() string {
	name := map[uint32]string{TypeServerChecksum: "server", TypeKDCChecksum: "KDC", TypeTicketChecksum: "ticket"}[e.Buffer]
	switch e.Problem {
	case SigMissing:
		return "PAC lacks its " + name + " signature"
	case SigUnknownType:
		return fmt.Sprintf("PAC %s signature of unknown checksum type %d", name, e.CkType)
	case SigWrongType:
		return fmt.Sprintf("PAC %s signature of checksum type %d, not the key's", name, e.CkType)
	}
	return "PAC " + name + " signature does not verify"
}

// String implements fmt.Stringer.
func (e *SignatureError) String() string { return e.Error() }

// Is makes a missing ticket signature ErrNoTicketSignature.
func (e *SignatureError) Is(target error) bool {
	return target == ErrNoTicketSignature && e.Buffer == TypeTicketChecksum && e.Problem == SigMissing
}

// knownChecksum reports the RFC 3961 checksum types an AD KDC knows: the
// DES-era ones (CRC32, MD4, MD5 and their DES forms), HMAC-MD5 and the AES
// ones. Unkeyed SHA1 (14) and the DES3 types are not among them.
func knownChecksum(t int32) bool {
	switch t {
	case 1, 2, 3, 4, 5, 6, 7, 8, kcrypto.CksumSHA1AES128, kcrypto.CksumSHA1AES256, -138:
		return true
	}
	return false
}

// VerifyServerChecksum checks the server signature with the key of the
// ticket's service (MS-PAC 2.8.4): over the PAC with the server and KDC
// Signature fields zeroed. Problems are *SignatureError.
func (p *PAC) VerifyServerChecksum(serverKey types.EncryptionKey) error {
	if !p.server.set {
		return &SignatureError{Buffer: TypeServerChecksum, Problem: SigMissing}
	}
	if !p.kdc.set {
		return &SignatureError{Buffer: TypeKDCChecksum, Problem: SigMissing}
	}
	z := bytes.Clone(p.raw)
	// The KDC signature's RODCIdentifier is zeroed with it (an RODC's PAC,
	// MS-PAC 2.8: what Windows and Samba sign over).
	clear(z[p.server.off:p.server.zend])
	clear(z[p.kdc.off:p.kdc.zend])
	return p.verify(TypeServerChecksum, p.server, serverKey, z)
}

// VerifyKDCChecksum checks the KDC signature with the krbtgt key (MS-PAC
// 2.8.5): over the server Signature field.
func (p *PAC) VerifyKDCChecksum(kdcKey types.EncryptionKey) error {
	if !p.server.set {
		return &SignatureError{Buffer: TypeServerChecksum, Problem: SigMissing}
	}
	if !p.kdc.set {
		return &SignatureError{Buffer: TypeKDCChecksum, Problem: SigMissing}
	}
	return p.verify(TypeKDCChecksum, p.kdc, kdcKey, p.raw[p.server.off:p.server.end])
}

// ParseVerified parses a PAC and checks both its server and KDC signatures,
// what a KDC does with the PAC of a ticket it issued (MS-PAC 2.8).
func ParseVerified(raw []byte, serverKey, kdcKey types.EncryptionKey) (*PAC, error) {
	p, err := Parse(raw)
	if err == nil {
		err = p.VerifyServerChecksum(serverKey)
	}
	if err == nil {
		err = p.VerifyKDCChecksum(kdcKey)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// verify checks one signature: its type must be key's keyed checksum.
func (p *PAC) verify(buf uint32, f sigField, key types.EncryptionKey, data []byte) error {
	err := kcrypto.VerifyChecksum(key, kcrypto.UsagePACChecksum, data, types.Checksum{CksumType: f.typ, Checksum: p.raw[f.off:f.end]})
	if err == nil {
		return nil
	}
	switch c, _ := kerr.CodeOf(err); {
	case c == kerr.KRB_AP_ERR_MODIFIED:
		return &SignatureError{Buffer: buf, Problem: SigMismatch, CkType: f.typ}
	case knownChecksum(f.typ):
		return &SignatureError{Buffer: buf, Problem: SigWrongType, CkType: f.typ}
	}
	return &SignatureError{Buffer: buf, Problem: SigUnknownType, CkType: f.typ}
}

// VerifyTicketSignature checks the ticket signature of the PAC in etp with the
// krbtgt key (MS-PAC 2.8.2): it detects a changed EncTicketPart, e.g. a
// forwardable flag set by the service (CVE-2020-17049, "Bronze Bit").
// ErrNoPAC when there is nothing to check; a *SignatureError otherwise.
func VerifyTicketSignature(etp messages.EncTicketPart, kdcKey types.EncryptionKey) error {
	raw, ok := kmsg.FindPAC(etp.AuthorizationData)
	if !ok {
		return ErrNoPAC
	}
	p, err := Parse(raw)
	if err != nil {
		return err
	}
	if !p.ticket.set {
		return &SignatureError{Buffer: TypeTicketChecksum, Problem: SigMissing}
	}
	in, err := kmsg.TicketSignatureInput(etp)
	if err != nil {
		return err
	}
	return p.verify(TypeTicketChecksum, p.ticket, kdcKey, in)
}

// encodeLogonInfo builds PAC_LOGON_INFO: a type-serialized KERB_VALIDATION_INFO (MS-PAC 2.5).
func encodeLogonInfo(in Info) ([]byte, error) {
	var dom dtyp.SID
	var err error
	if in.DomainSID != "" {
		if dom, err = dtyp.ParseSID(in.DomainSID); err != nil {
			return nil, err
		}
	}
	extra := make([]dtyp.SID, len(in.ExtraSIDs))
	for i, s := range in.ExtraSIDs {
		if extra[i], err = dtyp.ParseSID(s); err != nil {
			return nil, err
		}
	}
	flags := in.UserFlags
	if len(extra) > 0 {
		flags |= logonExtraSIDs
	}
	return ndr.Serialize(func(w *ndr.Writer) {
		putFiletime(w, filetime(in.LogonTime))
		putFiletime(w, filetimeNever) // LogoffTime
		putFiletime(w, filetimeNever) // KickOffTime
		putFiletime(w, 0)             // PasswordLastSet
		putFiletime(w, 0)             // PasswordCanChange
		putFiletime(w, filetimeNever) // PasswordMustChange
		w.UnicodeString(in.EffectiveName)
		w.UnicodeString(in.FullName)
		for range 4 { // LogonScript, ProfilePath, HomeDirectory, HomeDirectoryDrive
			w.UnicodeString("")
		}
		w.U16(0) // LogonCount
		w.U16(0) // BadPasswordCount
		w.U32(in.UserRID)
		w.U32(in.PrimaryGroupRID)
		w.U32(uint32(len(in.GroupRIDs)))
		w.Ref(len(in.GroupRIDs) > 0, func() { // GROUP_MEMBERSHIP array (MS-PAC 2.2.2)
			w.U32(uint32(len(in.GroupRIDs)))
			for _, rid := range in.GroupRIDs {
				w.U32(rid)
				w.U32(groupAttrs)
			}
		})
		w.U32(flags)
		w.Raw(make([]byte, 16)) // UserSessionKey: zero for Kerberos
		w.UnicodeString(in.LogonServer)
		w.UnicodeString(in.LogonDomainName)
		w.Ref(in.DomainSID != "", func() { w.SID(dom) }) // LogonDomainId
		w.U32(0)                                         // Reserved1[0]
		w.U32(0)                                         // Reserved1[1]
		w.U32(in.UserAccountControl)
		w.U32(0)          // SubAuthStatus
		putFiletime(w, 0) // LastSuccessfulILogon
		putFiletime(w, 0) // LastFailedILogon
		w.U32(0)          // FailedILogonCount
		w.U32(0)          // Reserved3
		w.U32(uint32(len(extra)))
		w.Ref(len(extra) > 0, func() { // KERB_SID_AND_ATTRIBUTES array (MS-PAC 2.2.1)
			w.U32(uint32(len(extra)))
			for _, s := range extra {
				w.Ref(true, func() { w.SID(s) })
				w.U32(groupAttrs)
			}
		})
		w.Ref(false, nil) // ResourceGroupDomainSid
		w.U32(0)          // ResourceGroupCount
		w.Ref(false, nil) // ResourceGroupIds
	})
}

// putFiletime writes a FILETIME (MS-DTYP 2.3.3): two ULONGs, low part first.
func putFiletime(w *ndr.Writer, v uint64) { w.U32(uint32(v)); w.U32(uint32(v >> 32)) }

// fromUTF16LE decodes UTF-16LE; an odd length is an error.
func fromUTF16LE(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("odd UTF-16 length")
	}
	return dtyp.FromUTF16LE(b), nil
}

// decodeLogonInfo reads KERB_VALIDATION_INFO (MS-PAC 2.5); the referents of
// the resource groups, which come last, are not read.
func decodeLogonInfo(b []byte, info *Info) error {
	r, err := ndr.Deserialize(b)
	if err != nil {
		return err
	}
	r.Skip(6*8, 4) // the FILETIMEs; the logon time comes from PAC_CLIENT_INFO
	var strs [6]ndr.UnicodeStringHeader
	for i := range strs {
		strs[i] = r.UnicodeStringHeader()
	}
	r.U16() // LogonCount
	r.U16() // BadPasswordCount
	info.UserRID = r.U32()
	info.PrimaryGroupRID = r.U32()
	groupCount, groupPtr := r.U32(), r.U32()
	info.UserFlags = r.U32()
	r.Skip(16, 4) // UserSessionKey
	server, domain := r.UnicodeStringHeader(), r.UnicodeStringHeader()
	domPtr := r.U32()
	r.Skip(8, 4) // Reserved1
	info.UserAccountControl = r.U32()
	r.Skip(4+16+8, 4) // SubAuthStatus .. Reserved3
	sidCount, extraPtr := r.U32(), r.U32()
	r.Skip(12, 4) // ResourceGroupDomainSid, ResourceGroupCount, ResourceGroupIds

	// Deferred referents, in pointer order (DCE 1.1 14.3.12.3).
	info.EffectiveName = r.UnicodeString(strs[0])
	info.FullName = r.UnicodeString(strs[1])
	for _, h := range strs[2:] {
		r.UnicodeString(h)
	}
	if groupPtr != 0 {
		n := r.Count(8, math.MaxInt32)
		if n != int(groupCount) {
			r.Failf("group count %d, array %d", groupCount, n)
		}
		info.GroupRIDs = make([]uint32, n)
		for i := range info.GroupRIDs {
			info.GroupRIDs[i] = r.U32()
			r.U32() // Attributes
		}
	}
	info.LogonServer = r.UnicodeString(server)
	info.LogonDomainName = r.UnicodeString(domain)
	if domPtr != 0 {
		info.DomainSID = r.SID().String()
	}
	if extraPtr != 0 {
		n := r.Count(8, math.MaxInt32)
		if n != int(sidCount) {
			r.Failf("SID count %d, array %d", sidCount, n)
		}
		ptrs := make([]uint32, n)
		for i := range ptrs {
			ptrs[i] = r.U32()
			r.U32() // Attributes
		}
		for _, ptr := range ptrs {
			if ptr != 0 {
				info.ExtraSIDs = append(info.ExtraSIDs, r.SID().String())
			}
		}
	}
	return r.Err()
}

// encodeClientInfo builds PAC_CLIENT_INFO (MS-PAC 2.7): ClientId, NameLength, Name.
func encodeClientInfo(in Info) ([]byte, error) {
	name := dtyp.UTF16LE(in.ClientName)
	if len(name) > 0xffff {
		return nil, errors.New("PAC_CLIENT_INFO: name too long")
	}
	b := binary.LittleEndian.AppendUint64(nil, filetime(in.LogonTime))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...), nil
}

func decodeClientInfo(b []byte, info *Info) error {
	if len(b) < 10 {
		return errors.New("truncated PAC_CLIENT_INFO")
	}
	n := 10 + int(binary.LittleEndian.Uint16(b[8:]))
	if n > len(b) {
		return errors.New("truncated PAC_CLIENT_INFO")
	}
	info.LogonTime = fromFiletime(binary.LittleEndian.Uint64(b))
	var err error
	info.ClientName, err = fromUTF16LE(b[10:n])
	return err
}

// encodeUPNDNSInfo builds UPN_DNS_INFO (MS-PAC 2.10): a header of
// (length, offset) pairs and Flags, then the 8-aligned UTF-16 strings and SID.
func encodeUPNDNSInfo(in Info) ([]byte, error) {
	extended := in.SamName != "" || in.UserSID != ""
	var usid []byte
	if in.UserSID != "" {
		s, err := dtyp.ParseSID(in.UserSID)
		if err != nil {
			return nil, err
		}
		usid = s.Binary()
	}
	b := make([]byte, 12, 128)
	field := func(at int, data []byte) {
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		binary.LittleEndian.PutUint16(b[at:], uint16(len(data)))
		binary.LittleEndian.PutUint16(b[at+2:], uint16(len(b)))
		b = append(b, data...)
	}
	if extended {
		b = append(b, make([]byte, 8)...)
		binary.LittleEndian.PutUint32(b[8:], upnDNSExtended)
	}
	field(0, dtyp.UTF16LE(in.UPN))
	field(4, dtyp.UTF16LE(in.DNSDomainName))
	if extended {
		field(12, dtyp.UTF16LE(in.SamName))
		field(16, usid)
	}
	if len(b) > 0xffff {
		return nil, errors.New("UPN_DNS_INFO too long")
	}
	return b, nil
}

func decodeUPNDNSInfo(b []byte, info *Info) error {
	if len(b) < 12 {
		return errors.New("truncated UPN_DNS_INFO")
	}
	field := func(at int) ([]byte, error) {
		n, off := int(binary.LittleEndian.Uint16(b[at:])), int(binary.LittleEndian.Uint16(b[at+2:]))
		if off+n > len(b) {
			return nil, errors.New("UPN_DNS_INFO field out of range")
		}
		return b[off : off+n], nil
	}
	str := func(at int) (string, error) {
		f, err := field(at)
		if err != nil {
			return "", err
		}
		return fromUTF16LE(f)
	}
	var err1, err2, err3, err4 error
	info.UPN, err1 = str(0)
	info.DNSDomainName, err2 = str(4)
	if binary.LittleEndian.Uint32(b[8:])&upnDNSExtended != 0 {
		if len(b) < 20 {
			return errors.New("truncated UPN_DNS_INFO")
		}
		info.SamName, err3 = str(12)
		var s []byte
		if s, err4 = field(16); err4 == nil && len(s) > 0 {
			info.UserSID, err4 = dtyp.BinarySIDString(s)
		}
	}
	return errors.Join(err1, err2, err3, err4)
}

// encodeDelegationInfo builds a type-serialized S4U_DELEGATION_INFO (MS-PAC 2.9).
func encodeDelegationInfo(d S4UDelegationInfo) ([]byte, error) {
	return ndr.Serialize(func(w *ndr.Writer) {
		w.UnicodeString(d.S4U2ProxyTarget)
		w.U32(uint32(len(d.TransitedServices)))
		w.Ref(len(d.TransitedServices) > 0, func() {
			w.U32(uint32(len(d.TransitedServices)))
			for _, s := range d.TransitedServices {
				w.UnicodeString(s)
			}
		})
	})
}

func decodeDelegationInfo(b []byte) (S4UDelegationInfo, error) {
	var d S4UDelegationInfo
	r, err := ndr.Deserialize(b)
	if err != nil {
		return d, err
	}
	target := r.UnicodeStringHeader()
	size, ptr := r.U32(), r.U32()
	d.S4U2ProxyTarget = r.UnicodeString(target)
	if ptr != 0 {
		n := r.Count(8, math.MaxInt32)
		if n != int(size) {
			r.Failf("transited list size %d, array %d", size, n)
		}
		hs := make([]ndr.UnicodeStringHeader, n)
		for i := range hs {
			hs[i] = r.UnicodeStringHeader()
		}
		for _, h := range hs {
			d.TransitedServices = append(d.TransitedServices, r.UnicodeString(h))
		}
	}
	return d, r.Err()
}

// decodeAttributes reads PAC_ATTRIBUTES_INFO (MS-PAC 2.14): FlagsLength in
// bits, then that many bits in 32-bit words; the first word is returned.
func decodeAttributes(b []byte) (uint32, error) {
	if len(b) < 4 {
		return 0, errors.New("truncated PAC_ATTRIBUTES_INFO")
	}
	words := (uint64(binary.LittleEndian.Uint32(b)) + 31) / 32
	if uint64(len(b)-4)/4 < words {
		return 0, errors.New("truncated PAC_ATTRIBUTES_INFO")
	}
	if words == 0 {
		return 0, nil
	}
	return binary.LittleEndian.Uint32(b[4:]), nil
}

// filetime converts t to a FILETIME (MS-DTYP 2.3.3); the zero time is 0.
func filetime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.Unix()*1e7 + int64(t.Nanosecond()/100) + filetimeEpoch)
}

func fromFiletime(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	d := int64(v) - filetimeEpoch
	return time.Unix(d/1e7, d%1e7*100).UTC()
}
