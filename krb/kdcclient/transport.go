package kdcclient

import (
	"context"
	"errors"
	"fmt"
	"github.com/doublehop/doublehop/krb/kmsg"
	"net"
	"time"
)

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
	if err := kmsg.WriteFrame(conn, req); err != nil {
		return nil, fmt.Errorf("kdc %s: %w", addr, err)
	}
	rep, err := kmsg.ReadFrame(conn, kmsg.MaxMessage)
	if err != nil {
		return nil, fmt.Errorf("kdc %s: %w", addr, err)
	}
	if e := kmsg.AsKRBError(rep); e != nil {
		return rep, e
	}
	return rep, nil
}

// IsTimeout reports network timeouts.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
