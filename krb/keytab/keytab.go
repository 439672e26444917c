package keytab

// MIT keytab (FILE: type) codec, from MIT krb5 doc/formats/keytab_file_format.rst
// and src/lib/krb5/keytab/kt_file.c. gokrb5's keytab API only derives keys
// from passwords and keeps an 8-bit kvno (notes/gokrb5.md §3(f)); this codec
// writes raw keys and the 32-bit kvno extension, and parses with bounds.
//
// Record layout (version 0x0502, big-endian):
//
//	int32 length (>0 entry, <0 hole of -length zero bytes, 0 end)
//	entry: uint16 count of components, data realm, data components...,
//	       uint32 name type, uint32 timestamp, uint8 kvno,
//	       uint16 enctype, data key, [uint32 kvno]
//	data:  uint16 length, bytes
//
// (Version 0x0501 uses native byte order, counts the realm among the
// components and has no name type.) The .rst file says "32 bits" for the
// component count and key length; kt_file.c and every real keytab use 16.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/internal/atomicfile"
	"github.com/doublehop/doublehop/krb/internal/mitfmt"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KeytabEntry is one key of one principal.
type Entry struct {
	Principal kmsg.Principal
	Timestamp time.Time
	KVNO      uint32
	Key       types.EncryptionKey
}

// MaxKeytabSize bounds LoadKeytab.
const MaxSize = 16 << 20

// ktValidate reports entries MarshalKeytab would have to truncate: every
// data field has a 16-bit length, and the component count is 16-bit.
func ktValidate(entries []Entry) error {
	for i, e := range entries {
		p := e.Principal
		if len(p.Components) == 0 || len(p.Components) > 0xffff {
			return fmt.Errorf("keytab: entry %d: %d name components", i, len(p.Components))
		}
		if len(p.Realm) > 0xffff || len(e.Key.KeyValue) > 0xffff {
			return fmt.Errorf("keytab: entry %d: realm or key longer than 65535 bytes", i)
		}
		for _, c := range p.Components {
			if len(c) > 0xffff {
				return fmt.Errorf("keytab: entry %d: name component longer than 65535 bytes", i)
			}
		}
		if e.Key.KeyType < -0x8000 || e.Key.KeyType > 0xffff {
			return fmt.Errorf("keytab: entry %d: enctype %d does not fit 16 bits", i, e.Key.KeyType)
		}
	}
	return nil
}

// MarshalKeytab encodes entries as a version 0x0502 keytab. The 8-bit kvno
// is kvno&0xff; a 32-bit kvno follows the key when kvno > 255 (read by MIT
// since 1.14, Heimdal, gokrb5). A zero timestamp is written as now: gokrb5
// cannot find entries stamped 0 (notes/gokrb5.md §3(f)). Fields longer than
// their 16-bit length are truncated; SaveKeytab and GokrbKeytab reject them.
func Marshal(entries []Entry) []byte {
	w := &mitfmt.Writer{}
	w.U16(0x0502)
	now := time.Now()
	for _, e := range entries {
		rec := &mitfmt.Writer{}
		comps := e.Principal.Components
		if len(comps) > 0xffff {
			comps = comps[:0xffff]
		}
		rec.U16(uint16(len(comps)))
		rec.Data16([]byte(e.Principal.Realm))
		for _, c := range comps {
			rec.Data16([]byte(c))
		}
		rec.U32(uint32(e.Principal.NameType))
		ts := e.Timestamp
		if ts.IsZero() || ts.Unix() <= 0 {
			ts = now
		}
		rec.U32(mitfmt.Timestamp(ts))
		rec.U8(uint8(e.KVNO))
		rec.U16(uint16(e.Key.KeyType))
		rec.Data16(e.Key.KeyValue)
		if e.KVNO > 0xff {
			rec.U32(e.KVNO)
		}
		w.U32(uint32(len(rec.B)))
		w.B = append(w.B, rec.B...)
	}
	return w.B
}

// ParseKeytab decodes a version 0x0501 or 0x0502 keytab, skipping holes
// (negative record lengths, left by MIT's krb5_kt_remove_entry). It never
// panics.
func Parse(b []byte) ([]Entry, error) {
	if len(b) < 2 || b[0] != 5 || (b[1] != 1 && b[1] != 2) {
		return nil, errors.New("keytab: not an MIT keytab (want 0x0501 or 0x0502)")
	}
	v := int(b[1])
	var order binary.ByteOrder = binary.BigEndian
	if v == 1 {
		order = binary.LittleEndian
	}
	r := &mitfmt.Reader{B: b[2:], Order: order}
	var out []Entry
	// kt_file.c stops at a zero length or when fewer than 4 bytes remain.
	for len(r.B) >= 4 {
		size := int32(r.U32())
		switch {
		case size == 0:
			return out, nil
		case size < 0:
			hole := -int64(size)
			if hole > int64(len(r.B)) {
				return nil, fmt.Errorf("keytab: hole of %d bytes past the end of the file", hole)
			}
			r.Take(int(hole))
			continue
		case int64(size) > int64(len(r.B)):
			return nil, fmt.Errorf("keytab: entry %d: length %d exceeds the %d bytes left", len(out)+1, size, len(r.B))
		}
		e, err := ktParseEntry(r.Take(int(size)), order, v)
		if err != nil {
			return nil, fmt.Errorf("keytab: entry %d: %w", len(out)+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func ktParseEntry(b []byte, order binary.ByteOrder, v int) (Entry, error) {
	r := &mitfmt.Reader{B: b, Order: order}
	var e Entry
	n := int(r.U16())
	if v == 1 {
		if n == 0 {
			return e, errors.New("version 1 principal without a realm")
		}
		n--
	}
	if n*2 > len(r.B) {
		return e, fmt.Errorf("component count %d exceeds the entry", n)
	}
	e.Principal.Realm = string(r.Data16())
	for i := 0; i < n && r.Err == nil; i++ {
		e.Principal.Components = append(e.Principal.Components, string(r.Data16()))
	}
	if v != 1 {
		e.Principal.NameType = int32(r.U32())
	} else {
		e.Principal.NameType = kmsg.NTUnknown // as kt_file.c sets for version 1
	}
	e.Timestamp = mitfmt.Time(r.U32())
	e.KVNO = uint32(r.U8())
	e.Key.KeyType = int32(int16(r.U16()))
	e.Key.KeyValue = r.Data16()
	if r.Err != nil {
		return e, r.Err
	}
	// The 32-bit kvno extension: present when at least 4 bytes remain and
	// non-zero (keytab_file_format.rst).
	if len(r.B) >= 4 {
		if k := r.U32(); k != 0 {
			e.KVNO = k
		}
	}
	return e, nil
}

// LoadKeytab reads a keytab file ("FILE:/path", "WRFILE:/path" or a plain path).
func Load(path string) ([]Entry, error) {
	return mitfmt.Load(path, ktFilePath, MaxSize, "keytab", Parse)
}

// SaveKeytab writes entries atomically with mode 0600.
func Save(path string, entries []Entry) error {
	p, err := ktFilePath(path)
	if err != nil {
		return err
	}
	if err := ktValidate(entries); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, Marshal(entries), 0o600)
}

// ktFilePath accepts FILE: and WRFILE: (MIT's writable alias) prefixes.
func ktFilePath(name string) (string, error) {
	for _, pre := range []string{"FILE:", "WRFILE:"} {
		if len(name) > len(pre) && strings.EqualFold(name[:len(pre)], pre) {
			return name[len(pre):], nil
		}
	}
	p, err := mitfmt.FilePath(name)
	if err != nil {
		return "", fmt.Errorf("keytab: %s: only FILE: keytabs are supported", name)
	}
	return p, nil
}

// GokrbKeytab converts entries to a gokrb5 keytab (marshal, then
// keytab.Unmarshal), so gokrb5 clients and services can use raw keys.
func Gokrb5(entries []Entry) (kt *keytab.Keytab, err error) {
	if err := ktValidate(entries); err != nil {
		return nil, err
	}
	kt = keytab.New()
	// gokrb5's parser is not bounds-safe everywhere (notes §3(f)); our own
	// output is well-formed, but never let a panic escape.
	defer func() {
		if r := recover(); r != nil {
			kt, err = nil, fmt.Errorf("keytab: gokrb5 unmarshal panicked: %v", r)
		}
	}()
	if err := kt.Unmarshal(Marshal(entries)); err != nil {
		return nil, fmt.Errorf("keytab: gokrb5 unmarshal: %w", err)
	}
	return kt, nil
}

// Strongest returns account's key of the highest kvno, AES256 first, as a
// service logging on with its keytab picks it (single-component principals:
// the account's own name).
func Strongest(kt *keytab.Keytab, account string) (types.EncryptionKey, int, bool) {
	var best types.EncryptionKey
	kvno := 0
	for _, e := range kt.Entries {
		if len(e.Principal.Components) != 1 || !strings.EqualFold(e.Principal.Components[0], account) {
			continue
		}
		if int(e.KVNO) > kvno || (int(e.KVNO) == kvno && e.Key.KeyType == kcrypto.ETypeAES256SHA1) {
			best, kvno = e.Key, int(e.KVNO)
		}
	}
	return best, kvno, best.KeyType != 0
}
