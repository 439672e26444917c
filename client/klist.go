package client

import (
	"fmt"
	"io"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/ccache"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// Klist prints the cache as MIT's `klist -e -f` does.
func (c *Client) Klist(w io.Writer) error {
	cc, err := c.Cache()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Ticket cache: FILE:%s\nDefault principal: %s\n\nValid starting     Expires            Service principal\n", c.cfg.CCache, cc.Default)
	for _, e := range cc.Credentials {
		if e.IsConfig() {
			continue
		}
		start := e.StartTime
		if start.IsZero() {
			start = e.AuthTime
		}
		fmt.Fprintf(w, "%s  %s  %s\n", klistTime(start), klistTime(e.EndTime), e.Server)
		flags := kmsg.FlagLetters(ccache.BitStringFromFlags(e.Flags))
		if !e.RenewTill.IsZero() {
			fmt.Fprintf(w, "\trenew until %s, Flags: %s\n", klistTime(e.RenewTill), flags)
		} else {
			fmt.Fprintf(w, "\tFlags: %s\n", flags)
		}
		tktEType := "?"
		if t, err := kmsg.UnmarshalTicket(e.Ticket); err == nil {
			tktEType = events.ETypeName(t.EncPart.EType)
		}
		fmt.Fprintf(w, "\tEtype (skey, tkt): %s, %s \n", events.ETypeName(e.Key.KeyType), tktEType)
	}
	return nil
}

func klistTime(t time.Time) string { return t.Local().Format("01/02/06 15:04:05") }
