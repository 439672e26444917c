package ccache

// MIT credential cache (FILE: type) codec, from MIT krb5 doc/formats/
// ccache_file_format.rst. gokrb5 reads caches without bounds checks and
// cannot write them (notes/gokrb5.md §3(e)); this codec does both, never
// panics, and bounds every count and length by the remaining input.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/internal/atomicfile"
	"github.com/doublehop/doublehop/krb/internal/mitfmt"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/types"
)

// CCacheCredential is one ccache entry (ccache_file_format.rst, "Credential
// format"). It is named apart from Credential (the KRB-CRED form in
// krbcred.go); see CCacheCredentialFrom and (CCacheCredential).Credential.
type Credential struct {
	Client, Server                          kmsg.Principal
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
func (c Credential) IsConfig() bool {
	return c.Server.Realm == ccConfRealm && len(c.Server.Components) >= 2 && c.Server.Components[0] == ccConfName
}

// ConfigKey returns the key of a configuration entry ("pa_type",
// "fast_avail", ...) and the principal it is associated with, if any.
func (c Credential) ConfigKey() (key, principal string, ok bool) {
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
func CredentialFrom(c kmsg.Credential) (Credential, error) {
	der, err := kmsg.MarshalTicket(kmsg.CleanTicket(c.Ticket))
	if err != nil {
		return Credential{}, err
	}
	i := c.Info
	return Credential{
		Client:    kmsg.NewPrincipal(i.PName, i.PRealm),
		Server:    kmsg.NewPrincipal(i.SName, i.SRealm),
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
func (c Credential) Credential() (kmsg.Credential, error) {
	if c.IsConfig() {
		return kmsg.Credential{}, errors.New("ccache: configuration entry has no ticket")
	}
	t, err := kmsg.UnmarshalTicket(c.Ticket)
	if err != nil {
		return kmsg.Credential{}, fmt.Errorf("ccache: ticket for %s: %w", c.Server, err)
	}
	return kmsg.Credential{Ticket: t, Info: kmsg.KrbCredInfo{
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
type Cache struct {
	Version     int           // 0x0501..0x0504 as read; Marshal always writes 0x0504
	KDCOffset   time.Duration // header tag 1 (DeltaTime): KDC time minus client time
	Default     kmsg.Principal
	Credentials []Credential
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
const MaxSize = 16 << 20

// ParseCCache decodes a FILE ccache of format version 1 to 4. Versions 1 and
// 2 use the writer's native byte order; this reads them as little-endian
// (every platform the lab runs on). It never panics.
func Parse(b []byte) (*Cache, error) {
	if len(b) < 2 || b[0] != 5 || b[1] < 1 || b[1] > 4 {
		return nil, errors.New("ccache: not an MIT credential cache (want 0x0501..0x0504)")
	}
	c := &Cache{Version: 0x0500 | int(b[1])}
	v := int(b[1])
	r := &mitfmt.Reader{B: b[2:], Order: binary.BigEndian}
	if v <= 2 {
		r.Order = binary.LittleEndian
	}
	if v == 4 {
		// Header: 16-bit total length, then tag/length/value fields; unknown
		// tags are ignored.
		hdr := &mitfmt.Reader{B: r.Take(int(r.U16())), Order: r.Order}
		if r.Err != nil {
			return nil, fmt.Errorf("ccache: header: %w", r.Err)
		}
		for len(hdr.B) > 0 && hdr.Err == nil {
			tag := hdr.U16()
			val := hdr.Take(int(hdr.U16()))
			if hdr.Err == nil && tag == 1 {
				if len(val) != 8 {
					return nil, fmt.Errorf("ccache: header DeltaTime length %d, want 8", len(val))
				}
				sec := int32(binary.BigEndian.Uint32(val[:4]))
				usec := int32(binary.BigEndian.Uint32(val[4:]))
				c.KDCOffset = ccClampOffset(time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond)
			}
		}
		if hdr.Err != nil {
			return nil, fmt.Errorf("ccache: header: %w", hdr.Err)
		}
	}
	c.Default = ccReadPrincipal(r, v)
	if r.Err != nil {
		return nil, fmt.Errorf("ccache: default principal: %w", r.Err)
	}
	// No count or end marker: credentials run to the end of the file.
	for len(r.B) > 0 {
		cred := ccReadCredential(r, v)
		if r.Err != nil {
			return nil, fmt.Errorf("ccache: credential %d: %w", len(c.Credentials)+1, r.Err)
		}
		c.Credentials = append(c.Credentials, cred)
	}
	return c, nil
}

// ccReadPrincipal: name type (not in v1), component count (v1: realm
// included), realm, components; all data fields have 32-bit lengths.
func ccReadPrincipal(r *mitfmt.Reader, v int) kmsg.Principal {
	var p kmsg.Principal
	if v != 1 {
		p.NameType = int32(r.U32())
	}
	n := r.Count("component", 4)
	if r.Err != nil {
		return p
	}
	if v == 1 {
		if n == 0 {
			r.Fail(errors.New("version 1 principal without a realm"))
			return p
		}
		n--
	}
	p.Realm = string(r.Data32())
	for i := 0; i < n && r.Err == nil; i++ {
		p.Components = append(p.Components, string(r.Data32()))
	}
	return p
}

func ccReadCredential(r *mitfmt.Reader, v int) Credential {
	var c Credential
	c.Client = ccReadPrincipal(r, v)
	c.Server = ccReadPrincipal(r, v)
	// keyblock: enctype (twice in v3), data
	c.Key.KeyType = int32(int16(r.U16()))
	if v == 3 {
		c.Key.KeyType = int32(int16(r.U16()))
	}
	c.Key.KeyValue = r.Data32()
	c.AuthTime = mitfmt.Time(r.U32())
	c.StartTime = mitfmt.Time(r.U32())
	c.EndTime = mitfmt.Time(r.U32())
	c.RenewTill = mitfmt.Time(r.U32())
	c.IsSKey = r.U8() != 0
	c.Flags = r.U32()
	n := r.Count("address", 6)
	for i := 0; i < n && r.Err == nil; i++ {
		a := types.HostAddress{AddrType: int32(int16(r.U16()))}
		a.Address = r.Data32()
		c.Addresses = append(c.Addresses, a)
	}
	n = r.Count("authdata", 6)
	for i := 0; i < n && r.Err == nil; i++ {
		a := types.AuthorizationDataEntry{ADType: int32(int16(r.U16()))}
		a.ADData = r.Data32()
		c.AuthData = append(c.AuthData, a)
	}
	c.Ticket = r.Data32()
	c.SecondTicket = r.Data32()
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

func ccWritePrincipal(w *mitfmt.Writer, p kmsg.Principal) {
	w.U32(uint32(p.NameType))
	w.U32(uint32(len(p.Components)))
	w.Data32([]byte(p.Realm))
	for _, c := range p.Components {
		w.Data32([]byte(c))
	}
}

// Marshal encodes the cache as format version 4 (0x0504), the version MIT
// writes. The header carries the DeltaTime field only when KDCOffset != 0.
func (c *Cache) Marshal() []byte {
	w := &mitfmt.Writer{}
	w.U16(0x0504)
	if c.KDCOffset != 0 {
		w.U16(12) // one field: tag 1, length 8, seconds + microseconds
		w.U16(1)
		w.U16(8)
		d := ccClampOffset(c.KDCOffset)
		w.U32(uint32(int32(d / time.Second)))
		w.U32(uint32(int32((d % time.Second) / time.Microsecond)))
	} else {
		w.U16(0)
	}
	ccWritePrincipal(w, c.Default)
	for _, cr := range c.Credentials {
		ccWritePrincipal(w, cr.Client)
		ccWritePrincipal(w, cr.Server)
		w.U16(uint16(cr.Key.KeyType))
		w.Data32(cr.Key.KeyValue)
		w.U32(mitfmt.Timestamp(cr.AuthTime))
		w.U32(mitfmt.Timestamp(cr.StartTime))
		w.U32(mitfmt.Timestamp(cr.EndTime))
		w.U32(mitfmt.Timestamp(cr.RenewTill))
		if cr.IsSKey {
			w.U8(1)
		} else {
			w.U8(0)
		}
		w.U32(cr.Flags)
		w.U32(uint32(len(cr.Addresses)))
		for _, a := range cr.Addresses {
			w.U16(uint16(a.AddrType))
			w.Data32(a.Address)
		}
		w.U32(uint32(len(cr.AuthData)))
		for _, a := range cr.AuthData {
			w.U16(uint16(a.ADType))
			w.Data32(a.ADData)
		}
		w.Data32(cr.Ticket)
		w.Data32(cr.SecondTicket)
	}
	return w.B
}

// LoadCCache reads a FILE ccache ("FILE:/path" or a plain path).
func Load(path string) (*Cache, error) {
	return mitfmt.Load(path, mitfmt.FilePath, MaxSize, "ccache", Parse)
}

// Save writes the cache atomically (temp file in the same dir, fsync,
// rename) with mode 0600, so a concurrent reader such as klist sees either
// the old or the new cache, never a torn one.
func (c *Cache) Save(path string) error {
	p, err := mitfmt.FilePath(path)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, c.Marshal(), 0o600)
}

// Add stores cred, replacing an existing entry with the same client and server.
func (c *Cache) Add(cred Credential) {
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
func (c *Cache) Find(server kmsg.Principal) (Credential, bool) {
	best := -1
	for i, cr := range c.Credentials {
		if cr.IsConfig() || !strings.EqualFold(cr.Server.Realm, server.Realm) || !kmsg.SameComponents(cr.Server.Components, server.Components) {
			continue
		}
		if best < 0 || !ccStart(cr).Before(ccStart(c.Credentials[best])) {
			best = i
		}
	}
	if best < 0 {
		return Credential{}, false
	}
	return c.Credentials[best], true
}

func ccStart(c Credential) time.Time {
	if !c.StartTime.IsZero() {
		return c.StartTime
	}
	return c.AuthTime
}

// ToGokrb5 builds a gokrb5 cache for client.NewFromCCache. Config entries are
// left out: gokrb5 would try to decode their values as tickets.
func (c *Cache) ToGokrb5() (*credentials.CCache, error) {
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
func DefaultPath() string {
	if v := os.Getenv("KRB5CCNAME"); v != "" {
		if len(v) > 5 && strings.EqualFold(v[:5], "FILE:") {
			return v[5:]
		}
		return v
	}
	return "/tmp/krb5cc_" + strconv.Itoa(os.Getuid())
}
