package krb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
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
		return nil, Errorf(KRB_ERR_FIELD_TOOLONG, "FIELD_TOOLONG", "message of %d bytes exceeds %d", n, max)
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

// Dialer opens connections; the embedded lab maps lab host names to loopback.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// SendTCP sends req to a KDC over TCP and returns its reply (one request per
// connection, as MIT and gokrb5 do). A KRB-ERROR reply is returned as an *Error.
func SendTCP(ctx context.Context, d Dialer, addr string, req []byte) ([]byte, error) {
	if d == nil {
		d = &net.Dialer{Timeout: 5 * time.Second}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kdc %s unreachable: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := WriteFrame(conn, req); err != nil {
		return nil, fmt.Errorf("kdc %s: %w", addr, err)
	}
	rep, err := ReadFrame(conn, MaxMessage)
	if err != nil {
		return nil, fmt.Errorf("kdc %s: %w", addr, err)
	}
	if e := AsKRBError(rep); e != nil {
		return rep, e
	}
	return rep, nil
}

// AsKRBError decodes b as a KRB-ERROR ([APPLICATION 30]) and returns it as an
// *Error, or nil when b is not one.
func AsKRBError(b []byte) *Error {
	k, ok := ParseKRBError(b)
	if !ok {
		return nil
	}
	return FromKRBError(k)
}

// ParseKRBError decodes a KRB-ERROR without panicking.
func ParseKRBError(b []byte) (messages.KRBError, bool) {
	if len(b) == 0 || b[0] != 0x7e {
		return messages.KRBError{}, false
	}
	var k messages.KRBError
	if err := safeUnmarshal(func() error { return k.Unmarshal(b) }); err != nil {
		return messages.KRBError{}, false
	}
	return k, true
}

// IsTimeout reports network timeouts.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
