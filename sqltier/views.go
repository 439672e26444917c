package sqltier

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/sqltier/tds"
	"github.com/doublehop/doublehop/sqltier/tsql"
)

// The lab's objects, read by the T-SQL engine (package tsql). Every row set
// is computed for the asking connection.
//
//	sys.dm_exec_connections  every database; the caller's own row only (a
//	                         login without VIEW SERVER STATE sees just that)
//	dbo.orders               the lab database; row-level security:
//	                         customer = SUSER_SNAME()
//	lab.connection_info      the lab database; the delegation evidence of
//	                         this connection (see connectionInfoColumns)
type view struct {
	db     string // "" = present in every database (sys)
	schema string
	name   string
	cols   []tds.Column
	rows   func(c *conn) [][]any
}

func col(name string, ti tds.TypeInfo, nullable bool) tds.Column {
	c := tds.Column{Name: name, Type: ti}
	if nullable {
		c.Flags = tds.ColNullable
	}
	return c
}

func (s *Server) views() []*view { return s.viewList }

func (s *Server) makeViews() []*view {
	return []*view{
		{schema: "sys", name: "dm_exec_connections", cols: dmExecConnectionsColumns, rows: (*conn).dmExecConnections},
		{schema: "sys", name: "dm_server_services", cols: dmServerServicesColumns, rows: (*conn).dmServerServices},
		{db: s.cfg.Database, schema: "dbo", name: "orders", cols: ordersColumns, rows: (*conn).orders},
		{db: s.cfg.Database, schema: "lab", name: "connection_info", cols: connectionInfoColumns, rows: (*conn).connectionInfo},
	}
}

var dmExecConnectionsColumns = []tds.Column{
	col("session_id", tds.IntN(4), true),
	col("most_recent_session_id", tds.IntN(4), true),
	col("connect_time", tds.DateTime2N(3), false),
	col("net_transport", tds.NVarChar(40), false),
	col("protocol_type", tds.NVarChar(40), true),
	col("protocol_version", tds.IntN(4), true),
	col("encrypt_option", tds.NVarChar(40), false),
	col("auth_scheme", tds.NVarChar(40), false),
	col("net_packet_size", tds.IntN(4), true),
	col("client_net_address", tds.NVarChar(48), true),
	col("client_tcp_port", tds.IntN(4), true),
	col("local_net_address", tds.NVarChar(48), true),
	col("local_tcp_port", tds.IntN(4), true),
}

func (c *conn) dmExecConnections() [][]any {
	enc := "FALSE"
	if c.tlsVersion != 0 && c.loginTLS == nil {
		enc = "TRUE"
	}
	return [][]any{{
		int64(c.spid), int64(c.spid), c.start, "TCP", "TSQL", int64(int32(c.tdsVersion)), enc, c.sess.authScheme,
		int64(c.packetSize), c.addr, int64(c.port), c.localAddr, int64(c.localPort),
	}}
}

// sys.dm_server_services: the services of this instance and the accounts
// they run as (what the SPN must be registered on).
var dmServerServicesColumns = []tds.Column{
	col("servicename", tds.NVarChar(256), false),
	col("startup_type_desc", tds.NVarChar(256), false),
	col("status_desc", tds.NVarChar(256), false),
	col("process_id", tds.IntN(4), true),
	col("service_account", tds.NVarChar(256), false),
}

func (c *conn) dmServerServices() [][]any {
	cfg := c.srv.cfg
	return [][]any{
		{"SQL Server (MSSQLSERVER)", "Automatic", "Running", int64(os.Getpid()), cfg.NetBIOS + `\` + cfg.ServiceAccount},
		{"SQL Server Agent (MSSQLSERVER)", "Manual", "Stopped", nil, cfg.NetBIOS + `\` + cfg.ServiceAccount},
	}
}

var ordersColumns = []tds.Column{
	col("id", tds.IntN(4), false),
	col("customer", tds.NVarChar(128), false),
	col("item", tds.NVarChar(100), false),
	col("amount", tds.DecimalN(10, 2), false),
}

// orders applies the table's security predicate: customer = SUSER_SNAME().
func (c *conn) orders() [][]any {
	var out [][]any
	for _, o := range c.srv.live.Load().data {
		if strings.EqualFold(o.Owner, c.sess.login) {
			out = append(out, []any{int64(o.ID), o.Owner, o.Item, tds.Decimal(o.Amount)})
		}
	}
	return out
}

// connectionInfoColumns is lab.connection_info: what the SQL tier learned
// from the Kerberos ticket of this connection. It shows, from the last hop,
// whether delegation happened and how:
//
//	forwarded = 1            the ticket was obtained with a forwarded TGT
//	                         (unconstrained delegation)
//	s4u2proxy_target,
//	transited_services       the PAC's S4U_DELEGATION_INFO (constrained or
//	                         resource-based delegation, MS-PAC 2.9)
//	delegated_tgt = 1        the client forwarded a TGT to this server too
var connectionInfoColumns = []tds.Column{
	col("session_id", tds.IntN(4), false),
	col("login_name", tds.NVarChar(128), false),
	col("client_principal", tds.NVarChar(256), true),
	col("auth_scheme", tds.NVarChar(40), false),
	col("gss_mech", tds.NVarChar(40), true),
	col("service_principal", tds.NVarChar(256), true),
	col("ticket_etype", tds.NVarChar(64), true),
	col("ticket_kvno", tds.IntN(4), true),
	col("ticket_flags", tds.NVarChar(256), true),
	col("forwardable", tds.BitN(), true),
	col("forwarded", tds.BitN(), true),
	col("delegation", tds.NVarChar(40), false),
	col("s4u2proxy_target", tds.NVarChar(256), true),
	col("transited_services", tds.NVarChar(1024), true),
	col("delegated_tgt", tds.BitN(), true),
	col("mutual_auth", tds.BitN(), true),
	col("auth_time", tds.DateTime2N(0), true),
	col("ticket_end_time", tds.DateTime2N(0), true),
	col("client_net_address", tds.NVarChar(48), true),
	col("encrypt_option", tds.NVarChar(40), false),
	col("tds_version", tds.NVarChar(16), false),
	col("client_app", tds.NVarChar(128), true),
	col("client_interface", tds.NVarChar(128), true),
}

func (c *conn) connectionInfo() [][]any {
	s := c.sess
	row := []any{int64(c.spid), s.login, nilIfEmpty(s.principal), s.authScheme}
	if sec := s.sec; sec != nil {
		mech := sec.Mech.String()
		if sec.SPNEGO {
			mech = "SPNEGO/" + mech
		}
		deleg := "none"
		switch delegationMechanism(sec) {
		case "constrained":
			deleg = "constrained (S4U2Proxy)"
		case "unconstrained":
			deleg = "unconstrained (forwarded TGT)"
		}
		var target, transited any
		if d := delegationInfo(sec); d != nil {
			target = nilIfEmpty(d.S4U2ProxyTarget)
			transited = nilIfEmpty(strings.Join(d.TransitedServices, ", "))
		}
		row = append(row, mech, kmsg.PrincipalString(kmsg.ParsePrincipalName(sec.Service), sec.ServiceRealm),
			events.ETypeName(sec.EType), int64(sec.KVNO), strings.Join(kmsg.FlagNames(sec.Flags), ","),
			kmsg.HasFlag(sec.Flags, kmsg.FlagForwardable), kmsg.HasFlag(sec.Flags, kmsg.FlagForwarded),
			deleg, target, transited, sec.Delegated != nil, sec.MutualRequired, timeOrNil(sec.AuthTime), timeOrNil(sec.EndTime))
	} else {
		row = append(row, nil, nil, nil, nil, nil, nil, nil, "none", nil, nil, nil, nil, nil, nil)
	}
	row = append(row, c.addr, c.encryptOption(), tdsVersionName(c.clientTDS), nilIfEmpty(s.app), nilIfEmpty(s.library))
	return [][]any{row}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func tdsVersionName(v uint32) string {
	switch {
	case v == tds.Version80:
		return "8.0"
	case v >= tds.Version74:
		return "7.4"
	case v >= tds.Version73A:
		return "7.3"
	case v >= 0x72000000:
		return "7.2"
	case v >= tds.Version71:
		return "7.1"
	}
	return fmt.Sprintf("0x%08x", v)
}

// tables are the lab's objects as the engine reads them, bound to c.
func (c *conn) tables() []*tsql.Table {
	if c.tabs == nil {
		for _, v := range c.srv.views() {
			rows := v.rows
			c.tabs = append(c.tabs, &tsql.Table{DB: v.db, Schema: v.schema, Name: v.name, Columns: v.cols, Rows: func() [][]any { return rows(c) }})
		}
	}
	return c.tabs
}
