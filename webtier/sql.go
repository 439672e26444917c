package webtier

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ntlm"
	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/integratedauth"
	"github.com/microsoft/go-mssqldb/msdsn"
)

// The go-mssqldb provider registry is a process-wide map without a lock, so
// the lab registers one provider once; each connection names its credential
// by a random handle in the DSN (notes: go-mssqldb §2.3).
const providerName = "doublehop"

var (
	registerOnce sync.Once
	credentials  sync.Map // handle -> *krb.Credential (nil: anonymous)
)

func registerProvider() {
	registerOnce.Do(func() {
		integratedauth.SetIntegratedAuthenticationProvider(providerName, integratedauth.ProviderFunc(provide))
	})
}

func provide(cfg msdsn.Config) (integratedauth.IntegratedAuthenticator, error) {
	v, ok := credentials.Load(cfg.Parameters["doublehop-cred"])
	if !ok {
		return nil, fmt.Errorf("no credential registered for this connection")
	}
	return &authenticator{cred: v.(*kmsg.Credential)}, nil
}

// authenticator produces the LOGIN7 SSPI blob: SPNEGO(krb5 AP-REQ) for the
// user's ticket, or, with no credential, the NTLM null session — what
// Windows sends when an impersonation-level token leaves the machine
// (NEGOTIATE, then an anonymous AUTHENTICATE to SQL Server's CHALLENGE).
type authenticator struct {
	cred *kmsg.Credential
	anon *ntlm.ClientContext
}

func (a *authenticator) InitialBytes() ([]byte, error) {
	if a.cred == nil {
		a.anon = ntlm.NewClientContext(ntlm.ClientConfig{Anonymous: true})
		return a.anon.Negotiate(), nil
	}
	tok, _, err := gss.InitiatorToken(*a.cred, gss.InitiatorOptions{Flags: gss.FlagConf | gss.FlagInteg, SPNEGO: true})
	return tok, err
}

// NextBytes: SQL Server sends no continuation for Kerberos (notes §1.4);
// for NTLM its CHALLENGE gets the anonymous AUTHENTICATE.
func (a *authenticator) NextBytes(b []byte) ([]byte, error) {
	if a.anon != nil && ntlm.TypeOf(b) == ntlm.TypeChallenge {
		return a.anon.Authenticate(b)
	}
	return nil, nil
}
func (a *authenticator) Free() {}

// SQLResult is what SQL Server answered, as the page shows it.
type SQLResult struct {
	Login          string  `json:"login,omitempty"`           // SUSER_SNAME()
	ServiceAccount string  `json:"service_account,omitempty"` // sys.dm_server_services: the account SQL Server runs as
	AuthScheme     string  `json:"auth_scheme,omitempty"`     // sys.dm_exec_connections.auth_scheme
	Orders         []Order `json:"orders,omitempty"`
	// From lab.connection_info: how the SQL tier saw the ticket (S4U_DELEGATION_INFO from the PAC).
	Delegation        string    `json:"delegation,omitempty"`
	TicketFlags       string    `json:"ticket_flags,omitempty"`
	TransitedServices string    `json:"transited_services,omitempty"`
	Error             *SQLError `json:"error,omitempty"`
	Elapsed           string    `json:"elapsed"`
}

// Order is one row of the lab's data table.
type Order struct {
	ID     int    `json:"id"`
	Item   string `json:"item"`
	Amount string `json:"amount"`
}

// SQLError is a SQL Server error as the client received it.
type SQLError struct {
	Number  int32  `json:"number"`
	State   uint8  `json:"state"`
	Message string `json:"message"`
}

// querySQL logs in to SQL Server with cred (one connection, never pooled
// across users) and runs the page's queries.
func (s *Server) querySQL(ctx context.Context, st Settings, spn string, cred *kmsg.Credential) (res SQLResult) {
	registerProvider()
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start).Round(time.Microsecond).String() }()
	handle := newHandle()
	credentials.Store(handle, cred)
	defer credentials.Delete(handle)
	cfg, err := msdsn.Parse(fmt.Sprintf("sqlserver://%s?database=labdb&encrypt=disable&dial+timeout=5&connection+timeout=10",
		net.JoinHostPort(st.SQLHost, strconv.Itoa(st.SQLPort))))
	if err != nil {
		res.Error = &SQLError{Message: err.Error()}
		return res
	}
	cfg.ServerSPN = spn
	cfg.Parameters["authenticator"] = providerName
	cfg.Parameters["doublehop-cred"] = handle
	conn := mssql.NewConnectorConfig(cfg)
	if s.cfg.Dialer != nil {
		conn.Dialer = s.cfg.Dialer
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		res.Error = sqlError(err)
		return res
	}
	defer c.Close()
	if err := c.QueryRowContext(ctx, "SELECT SUSER_SNAME()").Scan(&res.Login); err != nil {
		res.Error = sqlError(err)
		return res
	}
	if err := c.QueryRowContext(ctx, "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&res.AuthScheme); err != nil {
		res.Error = sqlError(err)
		return res
	}
	var flags, transited sql.NullString
	if err := c.QueryRowContext(ctx, "SELECT delegation, ticket_flags, transited_services FROM lab.connection_info").Scan(&res.Delegation, &flags, &transited); err != nil {
		res.Error = sqlError(err)
		return res
	}
	res.TicketFlags, res.TransitedServices = flags.String, transited.String
	if err := c.QueryRowContext(ctx, "SELECT TOP 1 service_account FROM sys.dm_server_services").Scan(&res.ServiceAccount); err != nil {
		res.Error = sqlError(err)
		return res
	}
	rows, err := c.QueryContext(ctx, "SELECT id, item, amount FROM dbo.orders")
	if err != nil {
		res.Error = sqlError(err)
		return res
	}
	defer rows.Close()
	for rows.Next() {
		var o Order
		if err := rows.Scan(&o.ID, &o.Item, &o.Amount); err != nil {
			res.Error = sqlError(err)
			return res
		}
		res.Orders = append(res.Orders, o)
	}
	if err := rows.Err(); err != nil {
		res.Error = sqlError(err)
	}
	return res
}

func sqlError(err error) *SQLError {
	var me mssql.Error
	if errors.As(err, &me) {
		e := &SQLError{Number: me.Number, State: me.State, Message: me.Message}
		if len(me.All) > 0 {
			e.Number, e.State, e.Message = me.All[0].Number, me.All[0].State, me.All[0].Message
		}
		return e
	}
	return &SQLError{Message: err.Error()}
}

func newHandle() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
