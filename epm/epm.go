// Package epm is the RPC endpoint mapper (C706 appendix O; MS-RPCE
// 2.2.1.2.5, 3.3.3.2): on TCP port 135 it tells a client which port serves
// an interface, so a tool that knows only the DC's name can reach its
// DRSUAPI. Served as a dcerpc.Handler.
package epm

import (
	"context"
	"encoding/binary"
	"net"
	"sync"

	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/dcerpc/ndr"
)

// Syntax is the endpoint mapper interface, v3.0.
var Syntax = dcerpc.SyntaxID{UUID: dcerpc.MustUUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa"), Major: 3}

// Operation numbers (C706 O.2).
const (
	opLookup = 2
	opMap    = 3
	opFree   = 4
)

// Status codes of the endpoint mapper (C706 appendix E).
const (
	statusOK            = 0
	statusNotRegistered = 0x16c9a0d6 // ept_s_not_registered
	statusCantPerformOp = 0x16c9a0cd // ept_s_cant_perform_op
)

// Tower floor protocol identifiers (C706 appendix L, MS-RPCE 2.2.1.2).
const (
	protoUUID   = 0x0d
	protoNCACN  = 0x0b // connection-oriented RPC
	protoTCP    = 0x07
	protoIP     = 0x09
	maxTower    = 1024
	maxTowers   = 500
	floorsNCACN = 5
)

// Endpoint is a registered interface and the TCP port that serves it.
type Endpoint struct {
	Syntax     dcerpc.SyntaxID
	Port       int
	Annotation string
}

// Mapper answers ept_map (and ept_lookup) from its registrations.
type Mapper struct {
	mu  sync.RWMutex
	eps []Endpoint
}

// Register adds an endpoint.
func (m *Mapper) Register(e Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eps = append(m.eps, e)
}

// Interface is the mapper as a served interface (no authentication, as on
// Windows).
func (m *Mapper) Interface() *dcerpc.Interface {
	return &dcerpc.Interface{Name: "epmapper", Syntax: Syntax, Handler: m}
}

// ServeRPC implements dcerpc.Handler.
func (m *Mapper) ServeRPC(ctx context.Context, c *dcerpc.Call) ([]byte, error) {
	switch c.Opnum {
	case opMap:
		return m.mapCall(c)
	case opLookup:
		return m.lookup(c)
	case opFree:
		// ept_lookup_handle_free: lookups keep no state to free.
		r := ndr.NewReader(c.Stub)
		r.Raw(20)
		if err := r.End(); err != nil {
			return nil, err
		}
		w := &ndr.Writer{}
		w.Raw(make([]byte, 20))
		w.U32(statusOK)
		return w.Bytes(), nil
	}
	return nil, dcerpc.FaultOpRangeError
}

// floor is one protocol floor of a tower.
type floor struct{ lhs, rhs []byte }

func parseTower(b []byte) ([]floor, bool) {
	if len(b) < 2 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n > 16 {
		return nil, false
	}
	off := 2
	fs := make([]floor, 0, n)
	for i := 0; i < n; i++ {
		var f floor
		for _, side := range []*[]byte{&f.lhs, &f.rhs} {
			if off+2 > len(b) {
				return nil, false
			}
			l := int(binary.LittleEndian.Uint16(b[off:]))
			off += 2
			if off+l > len(b) {
				return nil, false
			}
			*side = b[off : off+l]
			off += l
		}
		fs = append(fs, f)
	}
	return fs, true
}

func appendFloor(b []byte, lhs, rhs []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(lhs)))
	b = append(b, lhs...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(rhs)))
	return append(b, rhs...)
}

// tower builds ncacn_ip_tcp's five floors for an interface at ip:port.
func tower(s dcerpc.SyntaxID, ip net.IP, port int) []byte {
	b := binary.LittleEndian.AppendUint16(nil, floorsNCACN)
	lhs := func(id dcerpc.SyntaxID) []byte {
		l := append([]byte{protoUUID}, id.UUID[:]...)
		return binary.LittleEndian.AppendUint16(l, id.Major)
	}
	b = appendFloor(b, lhs(s), binary.LittleEndian.AppendUint16(nil, s.Minor))
	b = appendFloor(b, lhs(dcerpc.NDR20), binary.LittleEndian.AppendUint16(nil, dcerpc.NDR20.Minor))
	b = appendFloor(b, []byte{protoNCACN}, []byte{0, 0})
	b = appendFloor(b, []byte{protoTCP}, binary.BigEndian.AppendUint16(nil, uint16(port)))
	ip4 := ip.To4()
	if ip4 == nil {
		ip4 = net.IPv4zero.To4()
	}
	return appendFloor(b, []byte{protoIP}, ip4)
}

// readTower reads a twr_t referent: a conformant structure, its size first.
func readTower(r *ndr.Reader) []byte {
	size := r.Count(1, maxTower)
	l := r.U32()
	if r.Err() == nil && int(l) != size {
		r.Failf("tower_length %d with a conformant size of %d", l, size)
	}
	return r.Raw(size)
}

func writeTower(w *ndr.Writer, t []byte) {
	w.Conformant(len(t))
	w.U32(uint32(len(t)))
	w.Raw(t)
}

// mapCall is ept_map (opnum 3): the towers that reach the interface the
// client's tower names, over the same protocol stack.
func (m *Mapper) mapCall(c *dcerpc.Call) ([]byte, error) {
	r := ndr.NewReader(c.Stub)
	r.Ref(func() error { r.GUID(); return nil }) // object (full pointer)
	r.Flush()
	var want []byte
	r.Ref(func() error { want = readTower(r); return nil })
	r.Flush()
	r.Raw(20) // entry_handle
	maxT := r.U32()
	if err := r.End(); err != nil {
		return nil, err
	}
	if maxT > maxTowers {
		maxT = maxTowers
	}
	var found []byte
	if fs, ok := parseTower(want); ok && len(fs) >= 4 && len(fs[0].lhs) == 19 && fs[0].lhs[0] == protoUUID &&
		len(fs[2].lhs) == 1 && fs[2].lhs[0] == protoNCACN && len(fs[3].lhs) == 1 && fs[3].lhs[0] == protoTCP {
		var id dcerpc.SyntaxID
		copy(id.UUID[:], fs[0].lhs[1:17])
		id.Major = binary.LittleEndian.Uint16(fs[0].lhs[17:])
		m.mu.RLock()
		for _, e := range m.eps {
			if e.Syntax.UUID == id.UUID && e.Syntax.Major == id.Major {
				found = tower(e.Syntax, localIP(c), e.Port)
				break
			}
		}
		m.mu.RUnlock()
	}
	w := &ndr.Writer{}
	w.Raw(make([]byte, 20)) // entry_handle: no more to come
	n := 0
	if found != nil && maxT > 0 {
		n = 1
	}
	w.U32(uint32(n))
	w.Conformant(int(maxT))
	w.U32(0)
	w.U32(uint32(n))
	if n == 1 {
		w.Ref(true, func() { writeTower(w, found) })
	}
	w.Flush()
	status := uint32(statusOK)
	if n == 0 {
		status = statusNotRegistered
	}
	w.U32(status)
	return w.Bytes(), nil
}

// lookup is ept_lookup (opnum 2), what rpcdump-style tools list: every
// registration, with its annotation.
func (m *Mapper) lookup(c *dcerpc.Call) ([]byte, error) {
	r := ndr.NewReader(c.Stub)
	r.U32() // inquiry_type: every registration is listed whatever is asked
	r.Ref(func() error { r.GUID(); return nil })
	r.Flush()
	r.Ref(func() error { r.GUID(); r.U16(); r.U16(); return nil }) // rpc_if_id_t
	r.Flush()
	r.U32()             // vers_option
	handle := r.Raw(20) // entry_handle: where the last call stopped
	maxE := r.U32()
	if err := r.End(); err != nil {
		return nil, err
	}
	if maxE > maxTowers {
		maxE = maxTowers
	}
	m.mu.RLock()
	eps := append([]Endpoint(nil), m.eps...)
	m.mu.RUnlock()
	start := int(binary.LittleEndian.Uint32(handle[4:]))
	if start > len(eps) {
		start = len(eps)
	}
	eps = eps[start:]
	if len(eps) > int(maxE) {
		eps = eps[:maxE]
	}
	w := &ndr.Writer{}
	next := make([]byte, 20)
	if start+len(eps) < len(m.eps) && len(eps) > 0 {
		binary.LittleEndian.PutUint32(next[4:], uint32(start+len(eps)))
		next[0] = 1
	}
	w.Raw(next)
	w.U32(uint32(len(eps)))
	// entries[]: conformant varying array of ept_entry_t {object, tower*, annotation[64] varying}.
	w.Conformant(int(maxE))
	w.U32(0)
	w.U32(uint32(len(eps)))
	ip := localIP(c)
	for _, e := range eps {
		w.GUID([16]byte{})
		t := tower(e.Syntax, ip, e.Port)
		w.Ref(true, func() { writeTower(w, t) })
		a := e.Annotation
		if len(a) > 63 {
			a = a[:63]
		}
		w.U32(0)
		w.U32(uint32(len(a) + 1))
		w.Raw(append([]byte(a), 0))
	}
	w.Flush()
	status := uint32(statusOK)
	if len(eps) == 0 {
		status = statusNotRegistered
	}
	w.U32(status)
	return w.Bytes(), nil
}

// localIP is the address the client reached the mapper on: the DC's own.
func localIP(c *dcerpc.Call) net.IP {
	if c.Local == "" {
		return net.IPv4zero
	}
	h, _, err := net.SplitHostPort(c.Local)
	if err != nil {
		return net.IPv4zero
	}
	return net.ParseIP(h)
}
