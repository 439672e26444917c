package capture

import (
	"encoding/binary"
	"net/netip"
)

// Protocol numbers (IANA) and header sizes.
const (
	protoTCP = 6
	protoUDP = 17

	ipv4Header = 20 // RFC 791, no options
	ipv6Header = 40 // RFC 8200, no extension headers
	tcpHeader  = 20 // RFC 793, without options
	udpHeader  = 8  // RFC 768

	// maxSegment is the largest TCP payload per packet: the IPv4 total length
	// is 16 bits, 65535 - 20 (IPv4) - 20 (TCP) = 65495 (also the MSS of
	// Linux loopback, whose MTU is 65536). Larger reads and writes are split.
	maxSegment = 65535 - ipv4Header - tcpHeader
	// maxDatagram is the largest UDP payload recorded (65535 - 20 - 8).
	maxDatagram = 65535 - ipv4Header - udpHeader
)

// TCP flags (RFC 793 §3.1).
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
)

// ipHeader appends an IPv4 or IPv6 header for a packet from src to dst
// carrying proto with l4len bytes of transport header and payload. Addresses
// must be of the same family (see sameFamily).
func ipHeader(b []byte, src, dst netip.Addr, proto uint8, l4len int, id uint16, df bool) []byte {
	if src.Is4() {
		// RFC 791 §3.1.
		h := make([]byte, ipv4Header)
		h[0] = 4<<4 | ipv4Header/4 // version 4, IHL 5 words
		binary.BigEndian.PutUint16(h[2:], uint16(ipv4Header+l4len))
		binary.BigEndian.PutUint16(h[4:], id)
		if df {
			h[6] = 0x40 // flags: Don't Fragment; fragment offset 0
		}
		h[8] = 64 // TTL
		h[9] = proto
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], ^fold(sum(0, h)))
		return append(b, h...)
	}
	// RFC 8200 §3: version 6, traffic class 0, flow label 0.
	h := make([]byte, ipv6Header)
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:], uint16(l4len))
	h[6] = proto
	h[7] = 64 // hop limit
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(b, h...)
}

// pseudoSum is the checksum contribution of the pseudo-header that TCP and
// UDP checksums cover: RFC 793 §3.1 and RFC 768 for IPv4, RFC 8200 §8.1 for
// IPv6.
func pseudoSum(src, dst netip.Addr, proto uint8, l4len int) uint32 {
	var s uint32
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = sum(s, a[:])
		s = sum(s, b[:])
	} else {
		a, b := src.As16(), dst.As16()
		s = sum(s, a[:])
		s = sum(s, b[:])
	}
	return s + uint32(proto) + uint32(l4len)
}

// tcpSegment returns the IP and TCP headers of one segment from src to dst;
// payload follows them in the record. opts must be a multiple of 4 bytes.
func tcpSegment(src, dst netip.AddrPort, seq, ack uint32, flags uint8, win uint16, opts, payload []byte, id uint16) []byte {
	l4 := tcpHeader + len(opts) + len(payload)
	b := ipHeader(make([]byte, 0, ipv6Header+tcpHeader+len(opts)), src.Addr(), dst.Addr(), protoTCP, l4, id, true)
	t := make([]byte, tcpHeader, tcpHeader+len(opts))
	binary.BigEndian.PutUint16(t[0:], src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = uint8((tcpHeader+len(opts))/4) << 4 // data offset in 32-bit words
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], win)
	t = append(t, opts...)
	s := pseudoSum(src.Addr(), dst.Addr(), protoTCP, l4)
	s = sum(s, t)
	s = sum(s, payload)
	binary.BigEndian.PutUint16(t[16:], ^fold(s))
	return append(b, t...)
}

// udpDatagram returns the IP and UDP headers of one datagram (RFC 768).
func udpDatagram(src, dst netip.AddrPort, payload []byte, id uint16) []byte {
	l4 := udpHeader + len(payload)
	b := ipHeader(make([]byte, 0, ipv6Header+udpHeader), src.Addr(), dst.Addr(), protoUDP, l4, id, false)
	u := make([]byte, udpHeader)
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(l4))
	s := pseudoSum(src.Addr(), dst.Addr(), protoUDP, l4)
	s = sum(s, u)
	s = sum(s, payload)
	c := ^fold(s)
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones (0 means "no checksum")
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return append(b, u...)
}

// sum adds b to the running one's-complement sum s as big-endian 16-bit words
// (RFC 1071). Call it with even-length pieces except the last.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if s >= 1<<31 { // fold early so long payloads never overflow
			s = s&0xffff + s>>16
		}
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold reduces a running sum to 16 bits with end-around carry.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// sameFamily returns x and y as addresses of one family: IPv4-mapped IPv6
// addresses become IPv4; if one is still IPv6, the other is mapped into IPv6.
// An unspecified local address (a socket bound to 0.0.0.0 or ::) becomes the
// loopback address of the peer's family when the peer is on loopback.
func sameFamily(local, peer netip.Addr) (netip.Addr, netip.Addr) {
	local, peer = local.Unmap(), peer.Unmap()
	if local.IsUnspecified() || !local.IsValid() {
		switch {
		case peer.Is4() && peer.IsLoopback():
			local = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		case peer.Is4():
			local = netip.IPv4Unspecified()
		case peer.IsLoopback():
			local = netip.IPv6Loopback()
		default:
			local = netip.IPv6Unspecified()
		}
	}
	if local.Is4() != peer.Is4() {
		local, peer = netip.AddrFrom16(local.As16()), netip.AddrFrom16(peer.As16())
	}
	return local, peer
}
