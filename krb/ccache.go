package krb

// MIT credential cache (FILE: type) codec, from MIT krb5 doc/formats/
// ccache_file_format.rst. gokrb5 reads caches without bounds checks and
// cannot write them (notes/gokrb5.md §3(e)); this codec does both, never
// panics, and bounds every count and length by the remaining input.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Principal is a principal as the ccache and keytab formats store it.
type Principal struct {
	NameType   int32
	Components []string
	Realm      string
}

// NewPrincipal builds a Principal from a gokrb5 name and realm.
func NewPrincipal(pn types.PrincipalName, realm string) Principal {
	return Principal{NameType: pn.NameType, Components: append([]string(nil), pn.NameString...), Realm: realm}
}

// Name returns the gokrb5 form of the name (without the realm).
func (p Principal) Name() types.PrincipalName {
	return types.PrincipalName{NameType: p.NameType, NameString: append([]string(nil), p.Components...)}
}

// String renders "HTTP/web.lab.local@LAB.LOCAL", escaping '/', '@' and '\'
// inside components as krb5_unparse_name does.
func (p Principal) String() string {
	var b strings.Builder
	for i, c := range p.Components {
		if i > 0 {
			b.WriteByte('/')
		}
		ccEscape(&b, c, "/@\\")
	}
	b.WriteByte('@')
	ccEscape(&b, p.Realm, "@\\")
	return b.String()
}

func ccEscape(b *strings.Builder, s, special string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case strings.IndexByte(special, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == 0:
			b.WriteString(`\0`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
}

// Equal compares exactly: name type ignored (as krb5_principal_compare does),
// components and realm byte for byte.
func (p Principal) Equal(o Principal) bool {
	return p.Realm == o.Realm && ccSameComponents(p.Components, o.Components)
}

func ccSameComponents(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// CCacheCredential is one ccache entry (ccache_file_format.rst, "Credential
// format"). It is named apart from Credential (the KRB-CRED form in
// krbcred.go); see CCacheCredentialFrom and (CCacheCredential).Credential.
type CCacheCredential struct {
	Client, Server                          Principal
	Key                                     types.EncryptionKey
	AuthTime, StartTime, EndTime, RenewTill time.Time // zero time = 0 in the file
	IsSKey                                  bool
	Flags                                   uint32 // ticket flags, 32-bit form: 0x40000000 = forwardable (bit 1)
	Addresses                               []types.HostAddress
	AuthData                                types.AuthorizationData
	Ticket                                  []byte // DER Ticket; for a config entry, the value
	SecondTicket                            []byte
}

// Configuration entries (ccache_file_format.rst, "Credential cache
// configuration entries"): server realm X-CACHECONF:, first component
// krb5_ccache_conf_data, value in the ticket field.
const (
	ccConfRealm = "X-CACHECONF:"
	ccConfName  = "krb5_ccache_conf_data"
)

// IsConfig reports whether c is a cache configuration entry, not a ticket.
func (c CCacheCredential) IsConfig() bool {
	return c.Server.Realm == ccConfRealm && len(c.Server.Components) >= 2 && c.Server.Components[0] == ccConfName
}

// ConfigKey returns the key of a configuration entry ("pa_type",
// "fast_avail", ...) and the principal it is associated with, if any.
func (c CCacheCredential) ConfigKey() (key, principal string, ok bool) {
	if !c.IsConfig() {
		return "", "", false
	}
	if len(c.Server.Components) >= 3 {
		principal = c.Server.Components[2]
	}
	return c.Server.Components[1], principal, true
}

// CCacheCredentialFrom turns a Credential (ticket + KrbCredInfo, as from a
// KDC reply or a KRB-CRED) into a cache entry.
func CCacheCredentialFrom(c Credential) (CCacheCredential, error) {
	der, err := MarshalTicket(CleanTicket(c.Ticket))
	if err != nil {
		return CCacheCredential{}, err
	}
	i := c.Info
	return CCacheCredential{
		Client:    NewPrincipal(i.PName, i.PRealm),
		Server:    NewPrincipal(i.SName, i.SRealm),
		Key:       types.EncryptionKey{KeyType: i.Key.KeyType, KeyValue: append([]byte(nil), i.Key.KeyValue...)},
		AuthTime:  i.AuthTime,
		StartTime: i.StartTime,
		EndTime:   i.EndTime,
		RenewTill: i.RenewTill,
		Flags:     FlagsFromBitString(i.Flags),
		Addresses: append([]types.HostAddress(nil), i.CAddr...),
		Ticket:    der,
	}, nil
}

// Credential decodes the entry's ticket into the KRB-CRED form. Config
// entries and undecodable tickets are errors.
func (c CCacheCredential) Credential() (Credential, error) {
	if c.IsConfig() {
		return Credential{}, errors.New("ccache: configuration entry has no ticket")
	}
	t, err := UnmarshalTicket(c.Ticket)
	if err != nil {
		return Credential{}, fmt.Errorf("ccache: ticket for %s: %w", c.Server, err)
	}
	return Credential{Ticket: t, Info: KrbCredInfo{
		Key:       c.Key,
		PRealm:    c.Client.Realm,
		PName:     c.Client.Name(),
		Flags:     BitStringFromFlags(c.Flags),
		AuthTime:  c.AuthTime,
		StartTime: c.StartTime,
		EndTime:   c.EndTime,
		RenewTill: c.RenewTill,
		SRealm:    c.Server.Realm,
		SName:     c.Server.Name(),
		CAddr:     append(types.HostAddresses(nil), c.Addresses...),
	}}, nil
}

// CCache is a parsed credential cache.
type CCache struct {
	Version     int           // 0x0501..0x0504 as read; Marshal always writes 0x0504
	KDCOffset   time.Duration // header tag 1 (DeltaTime): KDC time minus client time
	Default     Principal
	Credentials []CCacheCredential
}

// FlagsFromBitString converts KerberosFlags (RFC 4120 §5.2.8, bit 0 = MSB of
// the first byte) into MIT's 32-bit krb5_flags (bit 0 = 0x80000000).
func FlagsFromBitString(b asn1.BitString) uint32 {
	var buf [4]byte
	n := copy(buf[:], b.Bytes)
	v := binary.BigEndian.Uint32(buf[:])
	// Bits past BitLength are not part of the value.
	if b.BitLength < 32 && n*8 > b.BitLength {
		if b.BitLength <= 0 {
			return 0
		}
		v &^= uint32(1)<<(32-uint(b.BitLength)) - 1
	}
	return v
}

// BitStringFromFlags is the inverse of FlagsFromBitString (32 bits, as RFC 4120
// §5.2.8 requires of KerberosFlags).
func BitStringFromFlags(f uint32) asn1.BitString {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, f)
	return asn1.BitString{Bytes: b, BitLength: 32}
}

// MaxCCacheSize bounds LoadCCache; a real cache is a few KiB per ticket.
const MaxCCacheSize = 16 << 20

// ccReader reads the ccache/keytab integer encodings with a sticky error.
type ccReader struct {
	b     []byte
	order binary.ByteOrder
	err   error
}

func (r *ccReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *ccReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(fmt.Errorf("truncated: need %d bytes, %d left", n, len(r.b)))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *ccReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *ccReader) u16() uint16 {
	if b := r.take(2); b != nil {
		return r.order.Uint16(b)
	}
	return 0
}

func (r *ccReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return r.order.Uint32(b)
	}
	return 0
}

// data32 reads a 32-bit length and that many bytes, copied.
func (r *ccReader) data32() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.fail(fmt.Errorf("length %d exceeds the %d bytes left", n, len(r.b)))
		return nil
	}
	if n == 0 {
		return nil
	}
	return append([]byte(nil), r.take(int(n))...)
}

// count reads a 32-bit element count and checks that count elements of at
// least minSize bytes each can still fit in the input.
func (r *ccReader) count(what string, minSize int) int {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.b)) {
		r.fail(fmt.Errorf("%s count %d exceeds the input", what, n))
		return 0
	}
	return int(n)
}

// ccTime maps a 32-bit krb5_timestamp to time; 0 stays the zero time. MIT
// treats timestamps as unsigned since 1.17 (y2038).
func ccTime(v uint32) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

func ccTimestamp(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	switch {
	case s <= 0:
		return 0
	case s > 0xffffffff:
		return 0xffffffff
	}
	return uint32(s)
}

// ParseCCache decodes a FILE ccache of format version 1 to 4. Versions 1 and
// 2 use the writer's native byte order; this reads them as little-endian
// (every platform the lab runs on). It never panics.
func ParseCCache(b []byte) (*CCache, error) {
	if len(b) < 2 || b[0] != 5 || b[1] < 1 || b[1] > 4 {
		return nil, errors.New("ccache: not an MIT credential cache (want 0x0501..0x0504)")
	}
	c := &CCache{Version: 0x0500 | int(b[1])}
	v := int(b[1])
	r := &ccReader{b: b[2:], order: binary.BigEndian}
	if v <= 2 {
		r.order = binary.LittleEndian
	}
	if v == 4 {
		// Header: 16-bit total length, then tag/length/value fields; unknown
		// tags are ignored.
		hdr := &ccReader{b: r.take(int(r.u16())), order: r.order}
		if r.err != nil {
			return nil, fmt.Errorf("ccache: header: %w", r.err)
		}
		for len(hdr.b) > 0 && hdr.err == nil {
			tag := hdr.u16()
			val := hdr.take(int(hdr.u16()))
			if hdr.err == nil && tag == 1 {
				if len(val) != 8 {
					return nil, fmt.Errorf("ccache: header DeltaTime length %d, want 8", len(val))
				}
				sec := int32(binary.BigEndian.Uint32(val[:4]))
				usec := int32(binary.BigEndian.Uint32(val[4:]))
				c.KDCOffset = ccClampOffset(time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond)
			}
		}
		if hdr.err != nil {
			return nil, fmt.Errorf("ccache: header: %w", hdr.err)
		}
	}
	c.Default = ccReadPrincipal(r, v)
	if r.err != nil {
		return nil, fmt.Errorf("ccache: default principal: %w", r.err)
	}
	// No count or end marker: credentials run to the end of the file.
	for len(r.b) > 0 {
		cred := ccReadCredential(r, v)
		if r.err != nil {
			return nil, fmt.Errorf("ccache: credential %d: %w", len(c.Credentials)+1, r.err)
		}
		c.Credentials = append(c.Credentials, cred)
	}
	return c, nil
}

// ccReadPrincipal: name type (not in v1), component count (v1: realm
// included), realm, components; all data fields have 32-bit lengths.
func ccReadPrincipal(r *ccReader, v int) Principal {
	var p Principal
	if v != 1 {
		p.NameType = int32(r.u32())
	}
	n := r.count("component", 4)
	if r.err != nil {
		return p
	}
	if v == 1 {
		if n == 0 {
			r.fail(errors.New("version 1 principal without a realm"))
			return p
		}
		n--
	}
	p.Realm = string(r.data32())
	for i := 0; i < n && r.err == nil; i++ {
		p.Components = append(p.Components, string(r.data32()))
	}
	return p
}

func ccReadCredential(r *ccReader, v int) CCacheCredential {
	var c CCacheCredential
	c.Client = ccReadPrincipal(r, v)
	c.Server = ccReadPrincipal(r, v)
	// keyblock: enctype (twice in v3), data
	c.Key.KeyType = int32(int16(r.u16()))
	if v == 3 {
		c.Key.KeyType = int32(int16(r.u16()))
	}
	c.Key.KeyValue = r.data32()
	c.AuthTime = ccTime(r.u32())
	c.StartTime = ccTime(r.u32())
	c.EndTime = ccTime(r.u32())
	c.RenewTill = ccTime(r.u32())
	c.IsSKey = r.u8() != 0
	c.Flags = r.u32()
	n := r.count("address", 6)
	for i := 0; i < n && r.err == nil; i++ {
		a := types.HostAddress{AddrType: int32(int16(r.u16()))}
		a.Address = r.data32()
		c.Addresses = append(c.Addresses, a)
	}
	n = r.count("authdata", 6)
	for i := 0; i < n && r.err == nil; i++ {
		a := types.AuthorizationDataEntry{ADType: int32(int16(r.u16()))}
		a.ADData = r.data32()
		c.AuthData = append(c.AuthData, a)
	}
	c.Ticket = r.data32()
	c.SecondTicket = r.data32()
	return c
}

// ccClampOffset limits a KDC offset to what the header's 32-bit seconds can
// carry (with a sub-second remainder of the same sign).
func ccClampOffset(d time.Duration) time.Duration {
	const max = time.Duration(1<<31-1)*time.Second + 999999*time.Microsecond
	switch {
	case d > max:
		return max
	case d < -max:
		return -max
	}
	return d
}

// ccWriter appends the version 4 (big-endian) encodings.
type ccWriter struct{ b []byte }

func (w *ccWriter) u8(v uint8)   { w.b = append(w.b, v) }
func (w *ccWriter) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *ccWriter) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *ccWriter) data32(d []byte) {
	w.u32(uint32(len(d)))
	w.b = append(w.b, d...)
}

func (w *ccWriter) principal(p Principal) {
	w.u32(uint32(p.NameType))
	w.u32(uint32(len(p.Components)))
	w.data32([]byte(p.Realm))
	for _, c := range p.Components {
		w.data32([]byte(c))
	}
}

// Marshal encodes the cache as format version 4 (0x0504), the version MIT
// writes. The header carries the DeltaTime field only when KDCOffset != 0.
func (c *CCache) Marshal() []byte {
	w := &ccWriter{}
	w.u16(0x0504)
	if c.KDCOffset != 0 {
		w.u16(12) // one field: tag 1, length 8, seconds + microseconds
		w.u16(1)
		w.u16(8)
		d := ccClampOffset(c.KDCOffset)
		w.u32(uint32(int32(d / time.Second)))
		w.u32(uint32(int32((d % time.Second) / time.Microsecond)))
	} else {
		w.u16(0)
	}
	w.principal(c.Default)
	for _, cr := range c.Credentials {
		w.principal(cr.Client)
		w.principal(cr.Server)
		w.u16(uint16(cr.Key.KeyType))
		w.data32(cr.Key.KeyValue)
		w.u32(ccTimestamp(cr.AuthTime))
		w.u32(ccTimestamp(cr.StartTime))
		w.u32(ccTimestamp(cr.EndTime))
		w.u32(ccTimestamp(cr.RenewTill))
		if cr.IsSKey {
			w.u8(1)
		} else {
			w.u8(0)
		}
		w.u32(cr.Flags)
		w.u32(uint32(len(cr.Addresses)))
		for _, a := range cr.Addresses {
			w.u16(uint16(a.AddrType))
			w.data32(a.Address)
		}
		w.u32(uint32(len(cr.AuthData)))
		for _, a := range cr.AuthData {
			w.u16(uint16(a.ADType))
			w.data32(a.ADData)
		}
		w.data32(cr.Ticket)
		w.data32(cr.SecondTicket)
	}
	return w.b
}

// ccFilePath strips "FILE:" and refuses the cache types this codec cannot
// handle (MIT krb5_cc_resolve: "TYPE:residual", no colon = FILE).
func ccFilePath(name string) (string, error) {
	if i := strings.IndexByte(name, ':'); i > 0 {
		typ := name[:i]
		if ccIsTypeName(typ) {
			if strings.EqualFold(typ, "FILE") {
				if name[i+1:] == "" {
					return "", errors.New("ccache: empty FILE: path")
				}
				return name[i+1:], nil
			}
			return "", fmt.Errorf("ccache: %s: cache type %q is not supported, only FILE: (MIT: use KRB5CCNAME=FILE:/path)", name, typ)
		}
	}
	if name == "" {
		return "", errors.New("ccache: empty path")
	}
	return name, nil
}

func ccIsTypeName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return len(s) > 0
}

// LoadCCache reads a FILE ccache ("FILE:/path" or a plain path).
func LoadCCache(path string) (*CCache, error) {
	p, err := ccFilePath(path)
	if err != nil {
		return nil, err
	}
	b, err := ccReadFile(p, MaxCCacheSize)
	if err != nil {
		return nil, fmt.Errorf("ccache: %w", err)
	}
	c, err := ParseCCache(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, p)
	}
	return c, nil
}

// ccReadFile reads a regular file of at most max bytes.
func ccReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s exceeds %d bytes", path, max)
	}
	return b, nil
}

// Save writes the cache atomically (temp file in the same dir, fsync,
// rename) with mode 0600, so a concurrent reader such as klist sees either
// the old or the new cache, never a torn one.
func (c *CCache) Save(path string) error {
	p, err := ccFilePath(path)
	if err != nil {
		return err
	}
	return WriteFileAtomic(p, c.Marshal(), 0o600)
}

// WriteFileAtomic replaces path with data via a temp file in the same
// directory, fsync, rename and a directory fsync, so a crash leaves the old or
// the new file, never a torn one. Used for caches, keytabs and the directory.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename durable; a failure here does not undo the write.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Add stores cred, replacing an existing entry with the same client and server.
func (c *CCache) Add(cred CCacheCredential) {
	for i := range c.Credentials {
		if c.Credentials[i].Client.Equal(cred.Client) && c.Credentials[i].Server.Equal(cred.Server) {
			c.Credentials[i] = cred
			return
		}
	}
	c.Credentials = append(c.Credentials, cred)
}

// Find returns the ticket for server: components must match exactly, the
// realm case-insensitively (realms are conventionally upper case, and MIT
// clients are lenient), the name type is ignored. Config entries are
// skipped. Among several matches the newest (latest start time, else auth
// time; later in the file on ties) wins.
func (c *CCache) Find(server Principal) (CCacheCredential, bool) {
	best := -1
	for i, cr := range c.Credentials {
		if cr.IsConfig() || !strings.EqualFold(cr.Server.Realm, server.Realm) || !ccSameComponents(cr.Server.Components, server.Components) {
			continue
		}
		if best < 0 || !ccStart(cr).Before(ccStart(c.Credentials[best])) {
			best = i
		}
	}
	if best < 0 {
		return CCacheCredential{}, false
	}
	return c.Credentials[best], true
}

func ccStart(c CCacheCredential) time.Time {
	if !c.StartTime.IsZero() {
		return c.StartTime
	}
	return c.AuthTime
}

// ToGokrb5 builds a gokrb5 cache for client.NewFromCCache. Config entries are
// left out: gokrb5 would try to decode their values as tickets.
func (c *CCache) ToGokrb5() (*credentials.CCache, error) {
	if len(c.Default.Components) == 0 || c.Default.Realm == "" {
		return nil, errors.New("ccache: no default principal")
	}
	g := &credentials.CCache{Version: 4}
	g.DefaultPrincipal.Realm = c.Default.Realm
	g.DefaultPrincipal.PrincipalName = c.Default.Name()
	for _, cr := range c.Credentials {
		if cr.IsConfig() {
			continue
		}
		gc := &credentials.Credential{
			Key:          types.EncryptionKey{KeyType: cr.Key.KeyType, KeyValue: append([]byte(nil), cr.Key.KeyValue...)},
			AuthTime:     cr.AuthTime,
			StartTime:    cr.StartTime,
			EndTime:      cr.EndTime,
			RenewTill:    cr.RenewTill,
			IsSKey:       cr.IsSKey,
			TicketFlags:  BitStringFromFlags(cr.Flags),
			Addresses:    append([]types.HostAddress(nil), cr.Addresses...),
			AuthData:     append([]types.AuthorizationDataEntry(nil), cr.AuthData...),
			Ticket:       append([]byte(nil), cr.Ticket...),
			SecondTicket: append([]byte(nil), cr.SecondTicket...),
		}
		gc.Client.Realm = cr.Client.Realm
		gc.Client.PrincipalName = cr.Client.Name()
		gc.Server.Realm = cr.Server.Realm
		gc.Server.PrincipalName = cr.Server.Name()
		g.Credentials = append(g.Credentials, gc)
	}
	return g, nil
}

// DefaultCCachePath is $KRB5CCNAME (a "FILE:" prefix stripped; other types
// are returned unchanged so LoadCCache can refuse them by name), else MIT's
// default /tmp/krb5cc_<uid>.
func DefaultCCachePath() string {
	if v := os.Getenv("KRB5CCNAME"); v != "" {
		if len(v) > 5 && strings.EqualFold(v[:5], "FILE:") {
			return v[5:]
		}
		return v
	}
	return "/tmp/krb5cc_" + strconv.Itoa(os.Getuid())
}
