package drsuapi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/dcerpc/ndr"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dtyp"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/ldap"
	"github.com/doublehop/doublehop/ntds"
	"github.com/doublehop/doublehop/ntlm"
)

// Extended operations (MS-DRSR 4.1.10.2.22) and their results (4.1.10.2.21).
const (
	exopReplObj    = 6
	exopReplSecret = 7

	exopErrSuccess      = 1
	exopErrUnknownOp    = 2
	exopErrAccessDenied = 15
	exopErrParamError   = 16
)

// getChangesReq is DRS_MSG_GETCHGREQ_V8 (and V10, V5), the parts this DC
// uses.
type getChangesReq struct {
	version    uint32
	destDSA    [16]byte
	nc         *DSName
	flags      uint32
	maxObjects uint32
	exop       uint32
	partial    []uint32 // pPartialAttrSet's attributes
}

// maxCursors and maxAttrs bound the request's vectors.
const (
	maxCursors = 10000
	maxAttrs   = 10000
	maxPrefix  = 10000
)

// parseGetChanges reads IDL_DRSGetNCChanges' [in] parameters after the
// handle: dwInVersion and the request union.
func parseGetChanges(r *ndr.Reader) (*getChangesReq, error) {
	q := &getChangesReq{version: r.U32()}
	if arm := r.U32(); r.Err() == nil && arm != q.version {
		return nil, &ndr.Error{Reason: fmt.Sprintf("request union arm %d for version %d", arm, q.version)}
	}
	switch q.version {
	case 5, 8, 10:
	default:
		return nil, dcerpc.FaultInvalidTag
	}
	r.Align(8)
	q.destDSA = r.GUID()
	r.GUID() // uuidInvocIdSrc
	r.Ref(func() error { q.nc = readDSName(r); return nil })
	readUSNVector(r)
	r.Ref(func() error { readCursors(r); return nil })
	if q.version == 5 {
		q.flags, q.maxObjects = r.U32(), r.U32()
		r.U32()
		q.exop = r.U32()
		r.U64()
		return q, r.Flush()
	}
	q.flags, q.maxObjects = r.U32(), r.U32()
	r.U32() // cMaxBytes
	q.exop = r.U32()
	r.U64() // liFsmoInfo
	r.Ref(func() error { q.partial = readPartialAttrs(r); return nil })
	r.Ref(func() error { readPartialAttrs(r); return nil })
	readPrefixTable(r)
	if q.version == 10 {
		r.U32() // ulMoreFlags
	}
	return q, r.Flush()
}

func readUSNVector(r *ndr.Reader) {
	r.Align(8)
	r.U64()
	r.U64()
	r.U64()
}

// readCursors reads UPTODATE_VECTOR_V1_EXT (conformant; cursors of a GUID
// and a USN).
func readCursors(r *ndr.Reader) {
	n := r.Count(24, maxCursors)
	r.Align(8)
	r.U32()
	r.U32()
	if c := r.U32(); r.Err() == nil && int(c) != n {
		r.Failf("cNumCursors %d with a conformant size of %d", c, n)
	}
	r.U32()
	for i := 0; i < n && r.Err() == nil; i++ {
		r.GUID()
		r.U64()
	}
}

// readPartialAttrs reads PARTIAL_ATTR_VECTOR_V1_EXT.
func readPartialAttrs(r *ndr.Reader) []uint32 {
	n := r.Count(4, maxAttrs)
	r.U32() // dwVersion
	r.U32()
	if c := r.U32(); r.Err() == nil && int(c) != n {
		r.Failf("cAttrs %d with a conformant size of %d", c, n)
	}
	out := make([]uint32, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		out = append(out, r.U32())
	}
	return out
}

// readPrefixTable reads SCHEMA_PREFIX_TABLE (the client's; this DC answers
// with its own default table, so the client's is only checked for shape).
func readPrefixTable(r *ndr.Reader) {
	count := r.U32()
	r.Ref(func() error {
		n := r.Count(12, maxPrefix)
		if r.Err() == nil && n != int(count) {
			r.Failf("PrefixCount %d with %d entries", count, n)
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			r.U32()
			r.U32()
			r.Ref(func() error { r.Raw(r.Count(1, 64)); return nil })
		}
		return nil
	})
}

// attribute is one ATTR of a reply: its ATTRTYP and values.
type attribute struct {
	typ    uint32
	values [][]byte
}

// ATTRTYPs of the attributes this DC replicates (MS-DRSR 5.16.4, the
// default prefix table: prefix 9 is 1.2.840.113556.1.4, 0 is 2.5.4).
const (
	attObjectClass             = 0x00000000 // 2.5.4.0
	attName                    = 0x00090001 // 1.2.840.113556.1.4.1
	attUserAccountControl      = 0x00090008
	attDBCSPwd                 = 0x00090037
	attUnicodePwd              = 0x0009005a
	attNTPwdHistory            = 0x0009005e
	attPwdLastSet              = 0x00090060
	attSupplementalCredentials = 0x0009007d
	attObjectSid               = 0x00090092
	attAccountExpires          = 0x0009009f
	attLMPwdHistory            = 0x000900a0
	attSAMAccountName          = 0x000900dd
	attSAMAccountType          = 0x0009012e
	attUserPrincipalName       = 0x00090290
	attServicePrincipalName    = 0x00090303
	attSupportedEncTypes       = 0x000906f9 // 1.2.840.113556.1.4.1785 (msDS-SupportedEncryptionTypes)
)

// Object classes as ATTRTYPs (2.5.6.0 top, 2.5.6.6 person, 2.5.6.7
// organizationalPerson, 1.2.840.113556.1.5.9 user, 1.2.840.113556.1.3.30
// computer).
var (
	classUser     = []uint32{0x00010000, 0x00010006, 0x00010007, 0x000a0009}
	classComputer = []uint32{0x00010000, 0x00010006, 0x00010007, 0x000a0009, 0x0003001e}
)

// defaultPrefixes is the default prefix table (MS-DRSR 5.16.4): index and
// the OID prefix's BER bytes.
var defaultPrefixes = []struct {
	ndx uint32
	oid []byte
}{
	{0, []byte{0x55, 0x04}}, {1, []byte{0x55, 0x06}},
	{2, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x14, 0x01, 0x02}}, {3, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x14, 0x01, 0x03}},
	{4, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x02, 0x01}}, {5, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x02, 0x03}},
	{6, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x01, 0x05}}, {7, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x01, 0x04}},
	{8, []byte{0x55, 0x05}},
	{9, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x14, 0x01, 0x04}}, {10, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x14, 0x01, 0x05}},
	{19, []byte{0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64}}, {20, []byte{0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x03}},
	{21, []byte{0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01}},
	{22, []byte{0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x03, 0x01}},
	{23, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x14, 0x01, 0x05, 0xb6, 0x58}},
	{24, []byte{0x55, 0x15}}, {25, []byte{0x55, 0x12}}, {26, []byte{0x55, 0x14}},
}

// isSecret is IsSecretAttribute (MS-DRSR 4.1.10.5.12) for the attributes
// this DC has.
func isSecret(t uint32) bool {
	switch t {
	case attUnicodePwd, attDBCSPwd, attNTPwdHistory, attLMPwdHistory, attSupplementalCredentials:
		return true
	}
	return false
}

// getNCChanges is IDL_DRSGetNCChanges (MS-DRSR 4.1.10) for one object: its
// secrets (EXOP_REPL_SECRET, what an RODC and Samba's tests ask) or the
// object with its secrets (EXOP_REPL_OBJ, what DCSync tools ask).
func (s *Server) getNCChanges(c *dcerpc.Call) ([]byte, error) {
	r := ndr.NewReader(c.Stub)
	b, _, err := handle(r, c)
	if err != nil {
		return nil, err
	}
	q, err := parseGetChanges(r)
	if err != nil {
		return nil, err
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	v, t := s.ntds.View()
	dcEntry, _ := v.Account(ntds.DCAccount(v))
	rep := &getChangesReply{dsa: guid16(ntds.NTDSSettingsGUID(dcSID(dcEntry))), invocation: guid16(ntds.InvocationID(dcSID(dcEntry)))}
	who, _ := s.caller(v, b)
	whoName := b.user
	domain := v.Lab.DomainDN()
	switch q.exop {
	case exopReplSecret, exopReplObj:
	default:
		// Whole-NC replication (a new DC joining) is not something the lab's
		// one DC takes part in.
		rep.extRet = exopErrUnknownOp
		return rep.marshal(errDRANotSupported), nil
	}
	if q.nc == nil {
		return rep.marshal(errDRAInvalidParam), nil
	}
	if !mayReplicateSecrets(who) {
		s.audit(c, whoName, domain, RightGetChangesAll, false, "Only domain controllers and Domain Admins may replicate secrets (a DCSync attempt?).")
		rep.extRet = exopErrAccessDenied
		return rep.marshal(errDRAAccessDenied), nil
	}
	e, obj := s.find(v, t, q.nc)
	if e == nil {
		rep.extRet = exopErrParamError
		return rep.marshal(errDRABadDN), nil
	}
	if b.clientExt&extStrongEncryption == 0 {
		return rep.marshal(errAlgorithmMismatch), nil
	}
	if rodc := s.destinationRODC(v, t, q.destDSA); rodc != nil && q.exop == exopReplSecret {
		// Secrets for a read-only DC: its password replication policy
		// decides, and what it gets is recorded (msDS-RevealedUsers).
		if ok, why := v.MayReveal(rodc, e); !ok {
			s.audit(c, whoName, obj.DN, RightGetChangesAll, false, "Not revealed to the read-only DC "+rodc.Name+": "+why+".")
			rep.extRet = exopErrAccessDenied
			return rep.marshal(errSuccess), nil
		}
		if _, err := s.cfg.Directory.Update(func(l *directory.Lab) error {
			if r := l.Account(rodc.Name); r != nil && r.RODC != nil && !r.RODC.Holds(e.Name) {
				r.RODC.Revealed = append(r.RODC.Revealed, e.Name)
			}
			return nil
		}); err != nil {
			return nil, dcerpc.FaultAccessDenied
		}
	}
	attrs, err := accountAttributes(v, e, q.exop == exopReplObj)
	if err != nil {
		return nil, err
	}
	for i := range attrs {
		if !isSecret(attrs[i].typ) {
			continue
		}
		for j, val := range attrs[i].values {
			if attrs[i].typ != attSupplementalCredentials {
				val = ridEncrypt(e.RID, val, false)
			}
			enc, err := encryptValue(c.Auth.SessionKey, val)
			if err != nil {
				return nil, dcerpc.FaultAccessDenied
			}
			attrs[i].values[j] = enc
		}
	}
	s.audit(c, whoName, domain, RightGetChangesAll, true, "The secrets of "+obj.DN+" were replicated.")
	rep.nc = obj
	rep.object = &replObject{name: obj, attrs: attrs, parent: parentGUID(t, obj.DN), meta: s.metaVersion(e)}
	rep.extRet = exopErrSuccess
	return rep.marshal(errSuccess), nil
}

func dcSID(e *directory.Entry) string {
	if e == nil {
		return ""
	}
	return e.SID
}

func guid16(b []byte) (g [16]byte) {
	copy(g[:], b)
	return g
}

// find resolves a DSNAME to an account: by GUID, else SID, else DN.
func (s *Server) find(v *directory.View, t *ntds.Tree, d *DSName) (*directory.Entry, *DSName) {
	var le *ldap.Entry
	switch {
	case d.GUID != [16]byte{}:
		for _, x := range t.Entries {
			if a, ok := x.Get("objectGUID"); ok && bytes.Equal(a.Vals[0], d.GUID[:]) {
				le = x
			}
		}
	case len(d.SID) > 0:
		for _, x := range t.Entries {
			if a, ok := x.Get("objectSid"); ok && bytes.Equal(a.Vals[0], d.SID) {
				le = x
			}
		}
	default:
		le, _ = t.Lookup(d.DN)
	}
	if le == nil || le.Account == "" {
		return nil, nil
	}
	e, ok := v.Account(le.Account)
	if !ok {
		return nil, nil
	}
	out := &DSName{DN: le.DN}
	if a, ok := le.Get("objectGUID"); ok {
		copy(out.GUID[:], a.Vals[0])
	}
	if a, ok := le.Get("objectSid"); ok {
		out.SID = a.Vals[0]
	}
	return e, out
}

// parentGUID is the objectGUID of the entry's parent container.
func parentGUID(t *ntds.Tree, dn string) *[16]byte {
	_, parent, ok := strings.Cut(dn, ",")
	if !ok {
		return nil
	}
	e, found := t.Lookup(parent)
	if !found {
		return nil
	}
	a, ok := e.Get("objectGUID")
	if !ok {
		return nil
	}
	g := guid16(a.Vals[0])
	return &g
}

// accountAttributes are an account's replicated attributes in clear: its
// secrets, and with the object (EXOP_REPL_OBJ) what a DCSync tool reads
// beside them. AD keeps the NT hash and the AES keys whatever
// msDS-SupportedEncryptionTypes says (that attribute is about tickets).
func accountAttributes(v *directory.View, e *directory.Entry, object bool) ([]attribute, error) {
	realm := v.Lab.Realm
	nt := ntlm.NTHash(e.Password)
	salt := e.Salt(realm)
	var keys []KerberosKey
	for _, et := range []int32{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1} {
		k, err := kcrypto.StringToKey(e.Password, salt, et)
		if err != nil {
			return nil, err
		}
		keys = append(keys, KerberosKey{EType: et, Value: k.KeyValue})
	}
	secrets := []attribute{
		{typ: attDBCSPwd},
		{typ: attUnicodePwd, values: [][]byte{nt}},
		{typ: attNTPwdHistory, values: [][]byte{append([]byte(nil), nt...)}},
		{typ: attSupplementalCredentials, values: [][]byte{SupplementalCredentials(salt, keys)}},
		{typ: attLMPwdHistory},
	}
	if !object {
		return secrets, nil
	}
	u16 := func(s string) [][]byte { return [][]byte{dtyp.UTF16LE(s)} }
	u32 := func(x uint32) [][]byte { return [][]byte{binary.LittleEndian.AppendUint32(nil, x)} }
	classes, accType := classUser, uint32(0x30000000)
	if e.Type == directory.TypeComputer {
		classes, accType = classComputer, 0x30000001
	}
	var oc [][]byte
	for _, c := range classes {
		oc = append(oc, binary.LittleEndian.AppendUint32(nil, c))
	}
	out := []attribute{{typ: attObjectClass, values: oc}, {typ: attName, values: u16(strings.TrimSuffix(e.Name, "$"))},
		{typ: attUserAccountControl, values: u32(e.UserAccountControl())}}
	if sid, err := dtyp.ParseSID(e.SID); err == nil {
		out = append(out, attribute{typ: attObjectSid, values: [][]byte{sid.Binary()}})
	}
	out = append(out, attribute{typ: attSAMAccountName, values: u16(e.Name)}, attribute{typ: attSAMAccountType, values: u32(accType)})
	if e.UPN != "" {
		out = append(out, attribute{typ: attUserPrincipalName, values: u16(e.UPN)})
	}
	var spns [][]byte
	for _, spn := range e.SPNs {
		spns = append(spns, dtyp.UTF16LE(spn))
	}
	if len(spns) > 0 {
		out = append(out, attribute{typ: attServicePrincipalName, values: spns})
	}
	out = append(out, attribute{typ: attPwdLastSet, values: [][]byte{binary.LittleEndian.AppendUint64(nil, 0)}})
	return append(out, secrets...), nil
}

// metaVersion is the version stamp of an account's attributes: its key
// version, which every password change moves on.
func (s *Server) metaVersion(e *directory.Entry) uint32 {
	if e.KVNO > 0 {
		return uint32(e.KVNO)
	}
	return 1
}

// replObject is one REPLENTINFLIST entry.
type replObject struct {
	name   *DSName
	attrs  []attribute
	parent *[16]byte
	meta   uint32
}

// getChangesReply is DRS_MSG_GETCHGREPLY_V6 (MS-DRSR 4.1.10.2.11).
type getChangesReply struct {
	dsa, invocation [16]byte
	nc              *DSName
	extRet          uint32
	object          *replObject
}

// marshal writes the [out] parameters: pdwOutVersion, the reply union
// (arm 6) and the return value.
func (p *getChangesReply) marshal(werr uint32) []byte {
	w := &ndr.Writer{}
	w.U32(6)
	w.U32(6)
	w.Align(8)
	w.GUID(p.dsa)
	w.GUID(p.invocation)
	w.Ref(p.nc != nil, func() { writeDSName(w, p.nc) })
	for i := 0; i < 6; i++ { // usnvecFrom, usnvecTo
		w.U64(0)
	}
	w.Ref(false, nil) // pUpToDateVecSrc
	w.U32(uint32(len(defaultPrefixes)))
	w.Ref(true, func() {
		w.Conformant(len(defaultPrefixes))
		for _, e := range defaultPrefixes {
			w.U32(e.ndx)
			w.U32(uint32(len(e.oid)))
			oid := e.oid
			w.Ref(true, func() {
				w.Conformant(len(oid))
				w.Raw(oid)
			})
		}
	})
	w.U32(p.extRet)
	n := 0
	if p.object != nil {
		n = 1
	}
	w.U32(uint32(n))
	w.U32(uint32(p.object.size()))
	w.Ref(p.object != nil, func() { p.object.write(w, p.invocation) })
	w.U32(0) // fMoreData
	w.U32(0) // cNumNcSizeObjects
	w.U32(0) // cNumNcSizeValues
	w.U32(0) // cNumValues
	w.Ref(false, nil)
	w.U32(0) // dwDRSError
	w.Flush()
	w.U32(werr)
	return w.Bytes()
}

// size approximates cNumBytes, the size of the objects' data.
func (o *replObject) size() int {
	if o == nil {
		return 0
	}
	n := 64 + o.name.structLen()
	for _, a := range o.attrs {
		n += 12
		for _, v := range a.values {
			n += 12 + len(v)
		}
	}
	return n
}

// write is REPLENTINFLIST: the next entry (none), ENTINF (the name, flags
// and attributes), fIsNCPrefix, the parent's GUID and the attributes'
// replication metadata.
func (o *replObject) write(w *ndr.Writer, invocation [16]byte) {
	w.Ref(false, nil) // pNextEntInf
	w.Ref(true, func() { writeDSName(w, o.name) })
	w.U32(1) // ENTINF_FROM_MASTER
	w.U32(uint32(len(o.attrs)))
	w.Ref(true, func() {
		w.Conformant(len(o.attrs))
		for _, a := range o.attrs {
			a := a
			w.U32(a.typ)
			w.U32(uint32(len(a.values)))
			w.Ref(len(a.values) > 0, func() {
				w.Conformant(len(a.values))
				for _, val := range a.values {
					val := val
					w.U32(uint32(len(val)))
					w.Ref(true, func() {
						w.Conformant(len(val))
						w.Raw(val)
					})
				}
			})
		}
	})
	w.U32(0) // fIsNCPrefix
	w.Ref(o.parent != nil, func() { w.GUID(*o.parent) })
	w.Ref(true, func() {
		// PROPERTY_META_DATA_EXT_VECTOR: one stamp per attribute.
		w.Conformant(len(o.attrs))
		w.Align(8)
		w.U32(uint32(len(o.attrs)))
		for range o.attrs {
			w.Align(8)
			w.U32(o.meta)
			w.U64(0) // timeChanged (DSTIME)
			w.GUID(invocation)
			w.U64(uint64(o.meta))
		}
	})
}
