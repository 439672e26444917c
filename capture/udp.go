package capture

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
)

// PacketConn returns pc whose UDP datagrams are recorded, one IP/UDP packet
// each: ReadFrom as peer → local, WriteTo as local → peer. If pc is bound to
// an unspecified address (0.0.0.0 or ::), the local address recorded is the
// loopback address when the peer is on loopback. Datagrams with addresses
// other than *net.UDPAddr are passed through unrecorded.
func (w *Writer) PacketConn(pc net.PacketConn) net.PacketConn {
	p := &packetConn{PacketConn: pc, w: w}
	p.id.Store(rand.Uint32())
	return p
}

type packetConn struct {
	net.PacketConn
	w  *Writer
	id atomic.Uint32 // IPv4 identification
}

func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := p.PacketConn.ReadFrom(b)
	if err == nil || n > 0 {
		p.record(addr, false, b[:n])
	}
	return n, addr, err
}

// WriteTo records the datagram before sending it, so a reply never follows
// the peer's next request in the file.
func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	p.record(addr, true, b)
	return p.PacketConn.WriteTo(b, addr)
}

func (p *packetConn) record(addr net.Addr, out bool, b []byte) {
	ua, ok := addr.(*net.UDPAddr)
	la, ok2 := p.PacketConn.LocalAddr().(*net.UDPAddr)
	if !ok || !ok2 || ua == nil || la == nil || len(b) > maxDatagram || !p.w.active() {
		return
	}
	peer, me := ua.AddrPort(), la.AddrPort()
	l, r := sameFamily(me.Addr(), peer.Addr())
	src, dst := netip.AddrPortFrom(r, peer.Port()), netip.AddrPortFrom(l, me.Port())
	if out {
		src, dst = dst, src
	}
	p.w.record(udpDatagram(src, dst, b, uint16(p.id.Add(1))), b)
}
