package drsuapi

import (
	"github.com/doublehop/doublehop/dcerpc/ndr"
	"github.com/doublehop/doublehop/dtyp"
)

// DSName is a DSNAME (MS-DRSR 5.50): an object named by any of its GUID,
// SID and DN (the first one set wins when it is looked up).
type DSName struct {
	GUID [16]byte
	SID  []byte // binary SID, at most 28 bytes (an NT4SID)
	DN   string
}

// maxDN bounds a DN in UTF-16 units.
const maxDN = 4096

// nt4SIDLen is the fixed size of the NT4SID field.
const nt4SIDLen = 28

// readDSName reads a DSNAME referent: a conformant structure whose size
// (NameLen+1 units) comes first.
func readDSName(r *ndr.Reader) *DSName {
	size := r.Count(2, maxDN+1)
	r.U32() // structLen: recomputed, as the server would
	sidLen := r.U32()
	d := &DSName{GUID: r.GUID()}
	sid := r.Raw(nt4SIDLen)
	nameLen := r.U32()
	if r.Err() != nil {
		return nil
	}
	if sidLen > nt4SIDLen || int(nameLen)+1 != size {
		r.Failf("DSNAME with SidLen %d and NameLen %d in %d units", sidLen, nameLen, size)
		return nil
	}
	d.SID = sid[:sidLen]
	d.DN = dtyp.FromUTF16LE(r.Raw(2 * size))
	if n := len(d.DN); n > 0 && d.DN[n-1] == 0 {
		d.DN = d.DN[:n-1]
	}
	return d
}

// structLen is DSNAME's structLen: the fixed part and the name with its NUL.
func (d *DSName) structLen() int { return 56 + 2*(len(dtyp.UTF16LE(d.DN))/2+1) }

func writeDSName(w *ndr.Writer, d *DSName) {
	name := dtyp.UTF16LE(d.DN)
	units := len(name)/2 + 1
	w.Conformant(units)
	w.U32(uint32(d.structLen()))
	w.U32(uint32(len(d.SID)))
	w.GUID(d.GUID)
	var sid [nt4SIDLen]byte
	copy(sid[:], d.SID)
	w.Raw(sid[:])
	w.U32(uint32(units - 1))
	w.Raw(name)
	w.Raw([]byte{0, 0})
}

// SIDString renders the DSNAME's SID, or "".
func (d *DSName) SIDString() string {
	if len(d.SID) == 0 {
		return ""
	}
	s, err := dtyp.BinarySIDString(d.SID)
	if err != nil {
		return ""
	}
	return s
}
