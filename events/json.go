package events

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as one JSON object, field for field what
// encoding/json would write for the struct tags (omitempty included), without
// reflection: every KDC request writes one, so it is on the hot path.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"time":`...)
	b = appendString(b, e.Time.Format(time.RFC3339Nano))
	b = append(b, `,"host":`...)
	b = appendString(b, e.Host)
	b = append(b, `,"tier":`...)
	b = appendString(b, e.Tier)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, int64(e.ID), 10)
	b = append(b, `,"outcome":`...)
	b = appendString(b, e.Outcome)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	str := func(k, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, k...)
			b = append(b, '"', ':')
			b = appendString(b, v)
		}
	}
	num := func(k string, v int64) {
		if v != 0 {
			b = append(b, ',', '"')
			b = append(b, k...)
			b = append(b, '"', ':')
			b = strconv.AppendInt(b, v, 10)
		}
	}
	list := func(k string, v []string) {
		if len(v) == 0 {
			return
		}
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, `":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	str("client", e.Client)
	str("service", e.Service)
	str("account", e.Account)
	num("etype", int64(e.EType))
	num("kvno", int64(e.KVNO))
	list("ticket_flags", e.TicketFlags)
	num("code", int64(e.Code))
	str("code_name", e.CodeName)
	str("status", e.Status)
	str("reason", e.Reason)
	str("mechanism", e.Mechanism)
	list("transited", e.Transited)
	str("target", e.Target)
	str("evidence", e.Evidence)
	num("logon_type", int64(e.LogonType))
	str("package", e.Package)
	str("logon_process", e.LogonProcess)
	str("lm_package", e.LMPackage)
	str("workstation", e.Workstation)
	str("impersonation", e.Impersonation)
	if e.Delegated {
		b = append(b, `,"delegated":true`...)
	}
	num("state", int64(e.State))
	str("login", e.Login)
	str("auth_scheme", e.AuthScheme)
	str("address", e.Address)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes a JSON string (RFC 8259 §7): quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and <, >, &
// escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
