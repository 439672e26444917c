package sqltier

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/sqltier/tds"
	mssql "github.com/microsoft/go-mssqldb"
)

// NTLM logins: go-mssqldb's own NTLMv2 client, and raw TDS for what a site
// with no delegable credential sends (the anonymous AUTHENTICATE) and for
// NTLM inside SPNEGO (Windows' Negotiate package).

func TestGoMSSQLNTLM(t *testing.T) {
	ts := startServer(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := func(user, pw string) string {
		return "sqlserver://" + ts.addr + "?authenticator=ntlm&user+id=" + strings.ReplaceAll(user, `\`, "%5C") + "&password=" + pw + "&dial+timeout=5"
	}
	db := openDB(t, dsn(`LAB\bob`, passwords["bob"]))
	var login, scheme string
	if err := db.QueryRowContext(ctx, "SELECT SUSER_SNAME()").Scan(&login); err != nil || login != `LAB\bob` {
		t.Fatalf("SUSER_SNAME() = %q, %v", login, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&scheme); err != nil || scheme != "NTLM" {
		t.Errorf("auth_scheme = %q, %v", scheme, err)
	}
	evs := ts.events.Events()
	if ev := evs[len(evs)-1]; ev.ID != events.SQLLoginSuccess || ev.AuthScheme != "NTLM" || ev.Login != `LAB\bob` {
		t.Errorf("success event = %+v", ev)
	}

	// NTLM reaches the same login table: alice's CONNECT SQL is denied.
	err := openDB(t, dsn(`LAB\alice`, passwords["alice"])).PingContext(ctx)
	var me mssql.Error
	if !errors.As(err, &me) || me.Number != 18456 {
		t.Fatalf("alice over NTLM: %v, want 18456", err)
	}
	evs = ts.events.Events()
	if ev := evs[len(evs)-1]; ev.State != stateLoginAccess || ev.AuthScheme != "NTLM" || ev.Login != `LAB\alice` {
		t.Errorf("alice event = %+v", ev)
	}

	// An account the DC does not know.
	err = openDB(t, dsn(`LAB\mallory`, "x")).PingContext(ctx)
	if !errors.As(err, &me) || me.Number != 18452 {
		t.Fatalf("unknown user: %v, want 18452", err)
	}
	evs = ts.events.Events()
	if ev := evs[len(evs)-1]; ev.Status != "0xC0000064" || ev.Reason != "NO_SUCH_USER" {
		t.Errorf("unknown-user event = %+v", ev)
	}
}

// ntlmLogin runs LOGIN7 with a NEGOTIATE, answers the CHALLENGE with
// answer, and returns the tokens of the login response (and the CHALLENGE).
func ntlmRawLogin(t *testing.T, c *rawClient, first []byte, answer func(challenge []byte) []byte) ([]any, []byte) {
	t.Helper()
	c.prelogin()
	toks := c.login7(tds.Version74, first)
	if len(toks) != 1 {
		t.Fatalf("LOGIN7 with a NEGOTIATE: %d tokens, want the SSPI token alone: %v", len(toks), toks)
	}
	ch, ok := toks[0].(tds.SSPIToken)
	if !ok {
		t.Fatalf("LOGIN7 with a NEGOTIATE answered %T", toks[0])
	}
	ch = bytes.Clone(ch)
	out, err := c.roundTrip(tds.PacketSSPI, answer(ch))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 1 {
		if tok, ok := out[0].(tds.SSPIToken); ok { // SPNEGO's accept-completed comes alone
			out[0] = tds.SSPIToken(bytes.Clone(tok)) // the reader reuses its buffer
			more, err := c.reply()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, more...)
		}
	}
	return out, ch
}

// The site's hop with no delegable credential: NTLM's null session, and
// SQL Server's famous answer.
func TestRawAnonymousNTLM(t *testing.T) {
	ts := startServer(t, nil, nil)
	cl := ntlm.NewClientContext(ntlm.ClientConfig{Anonymous: true})
	toks, _ := ntlmRawLogin(t, dialRaw(t, ts.addr), cl.Negotiate(), func(ch []byte) []byte {
		a, err := cl.Authenticate(ch)
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
	msgs := findMessages(toks)
	if len(msgs) != 1 || msgs[0].Number != 18456 || msgs[0].Text != `Login failed for user 'NT AUTHORITY\ANONYMOUS LOGON'.` {
		t.Fatalf("anonymous NTLM: %+v", msgs)
	}
	evs := ts.events.Events()
	if ev := evs[len(evs)-1]; ev.Login != anonymousLogon || ev.AuthScheme != "NTLM" || ev.State != stateTokenAccess || ev.Reason != "ANONYMOUS_NTLM" {
		t.Errorf("anonymous event = %+v", ev)
	}
}

// Windows' Negotiate package: NTLM inside SPNEGO, mechListMIC signed both ways.
func TestRawSPNEGONTLM(t *testing.T) {
	ts := startServer(t, nil, nil)
	cl := ntlm.NewClientContext(ntlm.ClientConfig{User: "bob", Domain: "LAB", Workstation: "WS01", NTHash: ntlm.NTHash(passwords["bob"])})
	init, mechTypes := gss.MarshalNegTokenInitMechs([]gss.Mech{gss.MechNTLM}, cl.Negotiate())
	toks, ch := ntlmRawLogin(t, dialRaw(t, ts.addr), init, func(tok []byte) []byte {
		resp, err := gss.ParseNegTokenResp(tok)
		if err != nil || !ntlm.Is(resp.ResponseToken) {
			t.Fatalf("the CHALLENGE is not in a NegTokenResp: %v %x", err, tok)
		}
		a, err := cl.Authenticate(resp.ResponseToken)
		if err != nil {
			t.Fatal(err)
		}
		return gss.MarshalNegTokenRespMIC(gss.NegAcceptIncomplete, gss.MechUnknown, a, cl.Session.ClientMAC(0, mechTypes))
	})
	if _, ok := toks[0].(tds.SSPIToken); !ok || !hasLoginAck(toks) {
		t.Fatalf("SPNEGO NTLM login: %v (after challenge %x)", toks, ch)
	}
	final, err := gss.ParseNegTokenResp(toks[0].(tds.SSPIToken))
	if err != nil || final.State != gss.NegAcceptCompleted || !cl.Session.VerifyServerMAC(0, mechTypes, final.MechListMIC) {
		t.Errorf("final SPNEGO token: %+v %v", final, err)
	}
}

// No secure channel to a DC: SEC_E_NO_AUTHENTICATING_AUTHORITY.
func TestNTLMWithoutDC(t *testing.T) {
	ts := startServer(t, nil, func(c *Config) { c.Validator = nil })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := openDB(t, "sqlserver://"+ts.addr+"?authenticator=ntlm&user+id=LAB%5Cbob&password=x&dial+timeout=5").PingContext(ctx)
	var me mssql.Error
	if !errors.As(err, &me) || me.Number != 18452 {
		t.Fatalf("no DC: %v, want 18452", err)
	}
	evs := ts.events.Events()
	if sspi, ev := evs[len(evs)-2], evs[len(evs)-1]; sspi.ID != events.SQLSSPIFailed || !strings.Contains(sspi.Message, "0x80090311") ||
		ev.ID != events.SQLUntrustedDomain || ev.Status != "0xC000005E" {
		t.Errorf("no-DC events = %+v, then %+v", sspi, ev)
	}
}
