package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// TDS versions as they appear in LOGIN7 (little-endian on the wire) and in
// LOGINACK (big-endian) (MS-TDS 2.2.6.4, 2.2.7.14).
const (
	Version70  uint32 = 0x70000000
	Version71  uint32 = 0x71000000
	Version71A uint32 = 0x71000001
	Version72  uint32 = 0x72090002
	Version73A uint32 = 0x730A0003
	Version73B uint32 = 0x730B0003
	Version74  uint32 = 0x74000004
	Version80  uint32 = 0x08000000 // TDS 8.0 (strict encryption)
)

// AtLeast72 reports whether v (as sent in LOGIN7) is TDS 7.2 or later; TDS
// 8.0 counts, although its number is smaller.
func AtLeast72(v uint32) bool { return v == Version80 || v>>24 >= 0x72 }

// OptionFlags2 and OptionFlags3 bits (MS-TDS 2.2.6.4).
const (
	Flag2IntegratedSecurity = 0x80 // fIntSecurity: the SSPI field carries the credential
	Flag3Extension          = 0x10 // fExtension: FeatureExt present
)

// Header sizes of LOGIN7: TDS 7.1 ends after ibAtchDBFile; 7.2 adds
// ibChangePassword and cbSSPILong.
const (
	Login7HeaderSize71 = 86
	Login7HeaderSize72 = 94
)

// FeatureExt is one FeatureOpt of the LOGIN7 extension (MS-TDS 2.2.6.4).
type FeatureExt struct {
	ID   uint8
	Data []byte
}

// Login7 is the LOGIN7 message (MS-TDS 2.2.6.4).
type Login7 struct {
	TDSVersion     uint32
	PacketSize     uint32
	ClientProgVer  uint32
	ClientPID      uint32
	ConnectionID   uint32
	OptionFlags1   uint8
	OptionFlags2   uint8
	TypeFlags      uint8
	OptionFlags3   uint8
	ClientTimeZone int32
	ClientLCID     uint32

	HostName       string
	UserName       string
	Password       string // clear text (unscrambled)
	AppName        string
	ServerName     string
	CltIntName     string // client library: go-mssqldb, TDS-Library, ...
	Language       string
	Database       string
	ClientID       [6]byte
	AtchDBFile     string
	ChangePassword string // clear text (unscrambled)

	SSPI     []byte
	Features []FeatureExt

	HeaderSize int // 86 or 94 (set by Unmarshal; Marshal derives it from TDSVersion)
}

// IntegratedSecurity reports fIntSecurity: the SSPI blob is the credential.
func (l *Login7) IntegratedSecurity() bool { return l.OptionFlags2&Flag2IntegratedSecurity != 0 }

// ErrLogin7 reports a malformed LOGIN7 message.
var ErrLogin7 = errors.New("tds: malformed LOGIN7")

const maxFeatures = 32

// Unmarshal decodes a LOGIN7 payload. Every offset and length is checked
// against the declared Length, which must fit in b.
func (l *Login7) Unmarshal(b []byte) error {
	*l = Login7{}
	if len(b) < Login7HeaderSize71 {
		return fmt.Errorf("%w: %d bytes", ErrLogin7, len(b))
	}
	length := binary.LittleEndian.Uint32(b)
	if length > uint32(len(b)) || length < Login7HeaderSize71 {
		return fmt.Errorf("%w: Length %d with %d bytes", ErrLogin7, length, len(b))
	}
	b = b[:length]
	r := &rd{b: b, off: 4}
	l.TDSVersion = r.u32()
	l.PacketSize = r.u32()
	l.ClientProgVer = r.u32()
	l.ClientPID = r.u32()
	l.ConnectionID = r.u32()
	l.OptionFlags1 = r.u8()
	l.OptionFlags2 = r.u8()
	l.TypeFlags = r.u8()
	l.OptionFlags3 = r.u8()
	l.ClientTimeZone = int32(r.u32())
	l.ClientLCID = r.u32()
	l.HeaderSize = Login7HeaderSize71
	if AtLeast72(l.TDSVersion) {
		l.HeaderSize = Login7HeaderSize72
		if len(b) < Login7HeaderSize72 {
			return fmt.Errorf("%w: TDS %08x header needs %d bytes, have %d", ErrLogin7, l.TDSVersion, Login7HeaderSize72, len(b))
		}
	}
	// str reads an (offset, length in characters) pair and the UTF-16 it points to.
	var ferr error
	field := func(name string, unit int) []byte {
		off := int(r.u16())
		n := int(r.u16()) * unit
		if n == 0 {
			return nil
		}
		if off < l.HeaderSize || off+n > len(b) {
			if ferr == nil {
				ferr = fmt.Errorf("%w: %s at %d+%d outside %d bytes", ErrLogin7, name, off, n, len(b))
			}
			return nil
		}
		return b[off : off+n]
	}
	l.HostName = DecodeUCS2(field("HostName", 2))
	l.UserName = DecodeUCS2(field("UserName", 2))
	l.Password = DecodeUCS2(unscramble(field("Password", 2)))
	l.AppName = DecodeUCS2(field("AppName", 2))
	l.ServerName = DecodeUCS2(field("ServerName", 2))
	ext := field("Extension", 1)
	l.CltIntName = DecodeUCS2(field("CltIntName", 2))
	l.Language = DecodeUCS2(field("Language", 2))
	l.Database = DecodeUCS2(field("Database", 2))
	copy(l.ClientID[:], r.bytes(6))
	sspiOff := int(r.u16())
	sspiLen := int(r.u16())
	l.AtchDBFile = DecodeUCS2(field("AtchDBFile", 2))
	if l.HeaderSize == Login7HeaderSize72 {
		l.ChangePassword = DecodeUCS2(unscramble(field("ChangePassword", 2)))
		long := r.u32()
		if sspiLen == 0xFFFF {
			// cbSSPILong carries the length when cbSSPI is USHRT_MAX (MS-TDS 2.2.6.4).
			if long > uint32(len(b)) {
				return fmt.Errorf("%w: cbSSPILong %d", ErrLogin7, long)
			}
			sspiLen = int(long)
		}
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrLogin7, r.err)
	}
	if ferr != nil {
		return ferr
	}
	if sspiLen > 0 {
		if sspiOff < l.HeaderSize || sspiOff+sspiLen > len(b) {
			return fmt.Errorf("%w: SSPI at %d+%d outside %d bytes", ErrLogin7, sspiOff, sspiLen, len(b))
		}
		l.SSPI = b[sspiOff : sspiOff+sspiLen]
	}
	if l.OptionFlags3&Flag3Extension != 0 && len(ext) >= 4 {
		// ibExtension points to a DWORD holding the offset of the FeatureExt block.
		fo := binary.LittleEndian.Uint32(ext)
		if fo < uint32(l.HeaderSize) || fo >= uint32(len(b)) {
			return fmt.Errorf("%w: FeatureExt offset %d", ErrLogin7, fo)
		}
		fr := &rd{b: b, off: int(fo)}
		for {
			id := fr.u8()
			if fr.err != nil {
				return fmt.Errorf("%w: FeatureExt without terminator", ErrLogin7)
			}
			if id == 0xFF {
				break
			}
			n := fr.u32()
			if n > uint32(fr.left()) {
				return fmt.Errorf("%w: feature 0x%02x of %d bytes", ErrLogin7, id, n)
			}
			if len(l.Features) >= maxFeatures {
				return fmt.Errorf("%w: too many features", ErrLogin7)
			}
			l.Features = append(l.Features, FeatureExt{ID: id, Data: fr.bytes(int(n))})
		}
	}
	return nil
}

// Marshal encodes the message (a client's view; the server uses it in tests
// and fuzz seeds). The header is 94 bytes for TDS 7.2+ and 86 before.
func (l *Login7) Marshal() []byte {
	hdr := Login7HeaderSize71
	if AtLeast72(l.TDSVersion) {
		hdr = Login7HeaderSize72
	}
	fixed := make([]byte, hdr)
	var data []byte
	off := func() int { return hdr + len(data) }
	put := func(pos int, s []byte, chars int) {
		binary.LittleEndian.PutUint16(fixed[pos:], uint16(off()))
		binary.LittleEndian.PutUint16(fixed[pos+2:], uint16(chars))
		data = append(data, s...)
	}
	str := func(pos int, s string) { put(pos, AppendUCS2(nil, s), UCS2Len(s)) }
	pw := func(pos int, s string) { put(pos, scramble(AppendUCS2(nil, s)), UCS2Len(s)) }
	binary.LittleEndian.PutUint32(fixed[4:], l.TDSVersion)
	binary.LittleEndian.PutUint32(fixed[8:], l.PacketSize)
	binary.LittleEndian.PutUint32(fixed[12:], l.ClientProgVer)
	binary.LittleEndian.PutUint32(fixed[16:], l.ClientPID)
	binary.LittleEndian.PutUint32(fixed[20:], l.ConnectionID)
	fixed[24], fixed[25], fixed[26], fixed[27] = l.OptionFlags1, l.OptionFlags2, l.TypeFlags, l.OptionFlags3
	binary.LittleEndian.PutUint32(fixed[28:], uint32(l.ClientTimeZone))
	binary.LittleEndian.PutUint32(fixed[32:], l.ClientLCID)
	str(36, l.HostName)
	str(40, l.UserName)
	pw(44, l.Password)
	str(48, l.AppName)
	str(52, l.ServerName)
	extPos := -1
	if len(l.Features) > 0 && l.OptionFlags3&Flag3Extension != 0 {
		extPos = off()
		put(56, make([]byte, 4), 4)
	} else {
		put(56, nil, 0)
	}
	str(60, l.CltIntName)
	str(64, l.Language)
	str(68, l.Database)
	copy(fixed[72:78], l.ClientID[:])
	if len(l.SSPI) >= 0xFFFF && hdr == Login7HeaderSize72 {
		put(78, l.SSPI, 0xFFFF)
		binary.LittleEndian.PutUint32(fixed[90:], uint32(len(l.SSPI)))
	} else {
		put(78, l.SSPI, len(l.SSPI))
	}
	str(82, l.AtchDBFile)
	if hdr == Login7HeaderSize72 {
		pw(86, l.ChangePassword)
	}
	if extPos >= 0 {
		binary.LittleEndian.PutUint32(data[extPos-hdr:], uint32(off()))
		for _, f := range l.Features {
			data = append(data, f.ID)
			data = appendU32(data, uint32(len(f.Data)))
			data = append(data, f.Data...)
		}
		data = append(data, 0xFF)
	}
	out := append(fixed, data...)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// Password obfuscation (MS-TDS 2.2.6.4): swap the nibbles, then XOR 0xA5.
func scramble(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = (c<<4 | c>>4) ^ 0xA5
	}
	return out
}

func unscramble(b []byte) []byte {
	if b == nil {
		return nil
	}
	out := make([]byte, len(b))
	for i, c := range b {
		c ^= 0xA5
		out[i] = c<<4 | c>>4
	}
	return out
}
