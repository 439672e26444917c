package kmsg

import (
	"encoding/binary"
	"fmt"
	"github.com/doublehop/doublehop/krb/kerr"
	"io"
)

// MaxMessage bounds one Kerberos message read from the wire (TCP length prefix,
// UDP datagram). AD's default MaxTokenSize is 48000; tickets with a large PAC
// stay well below 64 KiB.
const MaxMessage = 64 * 1024

// ReadFrame reads one RFC 4120 §7.2.2 TCP record: a 4-byte big-endian length
// (high bit reserved, must be 0) and the message.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n&0x80000000 != 0 {
		return nil, fmt.Errorf("kerberos tcp: reserved length bit set")
	}
	if int64(n) > int64(max) {
		return nil, kerr.Errorf(kerr.KRB_ERR_FIELD_TOOLONG, "FIELD_TOOLONG", "message of %d bytes exceeds %d", n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// WriteFrame writes one length-prefixed message in a single write.
func WriteFrame(w io.Writer, msg []byte) error {
	buf := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(buf, uint32(len(msg)))
	copy(buf[4:], msg)
	_, err := w.Write(buf)
	return err
}
