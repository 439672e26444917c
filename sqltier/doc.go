// Package sqltier is the lab's SQL Server (sql.lab.local:1433, running as
// svc_mssqlserver): a TDS 7.4 server that real SQL clients (go-mssqldb with
// its stock krb5 and ntlm authenticators, FreeTDS tsql) log in to with
// Kerberos or NTLM. It maps the authenticated principal to a Windows login (bob@LAB.LOCAL →
// LAB\bob), admits it by a login table, fails the way SQL Server fails, and
// answers a small, fixed set of queries. It is not a SQL engine.
//
// # Wire
//
// The codecs live in sqltier/tds (MS-TDS 2.2). A connection is one state
// machine (conn): PRELOGIN (2.2.6.5) → optional TLS → LOGIN7 (2.2.6.4) →
// requests (SQLBatch 2.2.6.7, RPC 2.2.6.6, TransMgr 2.2.6.9, ATTENTION
// 2.2.1.7). Encryption (Config.Encryption):
//
//	not-supported  ENCRYPT_NOT_SUP, no TLS (default; go-mssqldb encrypt=true fails)
//	off            TLS offered: login-only TLS for ENCRYPT_OFF clients, full TLS for ENCRYPT_ON
//	on             TLS forced for every session; clients that cannot encrypt are disconnected
//	strict         TDS 8.0: TLS (ALPN tds/8.0) before PRELOGIN; off and on accept such clients too
//
// TLS inside TDS is TLS 1.2 with session tickets off; a self-signed
// certificate for Config.Host is made when Config.TLSConfig is nil.
//
// # Logins
//
// LOGIN7's SSPI blob is Kerberos or NTLM. Kerberos (SPNEGO, raw krb5 GSS
// with either krb5 OID, or a bare AP-REQ) is verified with Config.Keytab.
// NTLM (bare NTLMSSP, or inside SPNEGO) is a handshake: the NEGOTIATE in
// LOGIN7, the CHALLENGE back in an SSPI token, the AUTHENTICATE in an SSPI
// message (0x11), validated by the DC through Config.Validator (the
// member's secure channel, package netlogon); SQL Server never holds a
// user's password or hash. When the
// client asked for mutual authentication (FreeTDS does, go-mssqldb never
// does) the AP-REP goes back alone in an SSPI token before the login
// response. Outcomes, with the errorlog state carried in the event (the
// client always sees state 1):
//
//	Kerberos OK, login granted           LOGINACK; event 18453, auth_scheme KERBEROS
//	NTLM validated by the DC, granted    LOGINACK; event 18453, auth_scheme NTLM
//	anonymous NTLM (null session)        18456 'NT AUTHORITY\ANONYMOUS LOGON', state 11 (the double hop)
//	empty blob                           18456 'NT AUTHORITY\ANONYMOUS LOGON', state 11
//	NTLM refused by the DC (password,
//	unknown user, NTLMv1/LM, restricted) 17806 0x8009030c then 18452, both with the NTSTATUS
//	NTLM with no DC reachable            17806 0x80090311 SEC_E_NO_AUTHENTICATING_AUTHORITY then 18452
//	no row in the login table            18456 state 11, "Token-based server access validation failed..."
//	login with CONNECT SQL denied        18456 state 12, "Login-based server access validation failed..." (LAB\alice by default)
//	login disabled                       18456 state 7
//	SQL authentication (user/password)   18456 state 58, Windows-authentication-only server
//	database missing                     4060 + 18456 state 38 (40 for the login's default database)
//	ticket refused (wrong key/SPN, skew,
//	replay, expired, garbage)            17806 (the SSPI code) then 18452 untrusted domain; both carry the Kerberos code
//	principal of another realm           18452; reason UNTRUSTED_REALM
//
// # Queries
//
// Over SQLBatch and over RPC sp_executesql (by ID 10 or name), with
// parameters of the common types (NVARCHAR short and PLP, VARCHAR, INTN,
// BITN, FLTN, DECIMALN, MONEY, GUID, date/time types, VARBINARY, NULL):
//
//	SELECT <items> [FROM <object> [[AS] alias]] [WHERE a op b [AND ...]] [ORDER BY ...]
//	    items: *, columns, literals, @params, COUNT(*), COUNT(col), SUSER_SNAME(),
//	    SUSER_NAME(), ORIGINAL_LOGIN(), SYSTEM_USER, USER_NAME(), CURRENT_USER,
//	    DB_NAME(), HOST_NAME(), APP_NAME(), GETDATE(), GETUTCDATE(), SYSDATETIME(),
//	    @@SPID, @@VERSION, @@SERVERNAME, @@SERVICENAME, @@LANGUAGE, @@TRANCOUNT;
//	    TOP n; op is = <> != < > <= >= or IS [NOT] NULL
//	SET <option> ...      accepted, no effect (NOCOUNT, TEXTSIZE, ANSI_*, ...)
//	USE master | labdb
//	WAITFOR DELAY 'hh:mm:ss[.fff]'   (≤ 5 min; ATTENTION interrupts it)
//	BeginTx / Commit / Rollback through TransMgr (nothing is written anyway)
//
// Everything else gets SQL Server's error: 102/156 syntax, 105 unclosed
// quote, 208 invalid object, 207 invalid column, 4104 unbound identifier,
// 137 undeclared variable, 195 unknown function, 245 conversion, 2812
// unknown procedure (a batch starting with a name executes it), 229
// permission denied for INSERT/UPDATE/DELETE on the lab's objects, 911
// unknown database, 7202 for four-part (linked server) names, and 40517
// "Keyword or statement option '%s' is not supported in this version of
// SQL Server." for T-SQL the lab recognises but does not implement (CREATE,
// DECLARE, JOIN, GROUP BY, OR, arithmetic, ...).
//
// # Objects
//
//	sys.dm_exec_connections  (every database) the caller's own row, as for a login
//	                         without VIEW SERVER STATE: session_id, connect_time,
//	                         net_transport, protocol_type, protocol_version,
//	                         encrypt_option, auth_scheme (KERBEROS/NTLM/SQL),
//	                         net_packet_size, client_net_address, client_tcp_port,
//	                         local_net_address, local_tcp_port
//	dbo.orders               (labdb) id, customer, item, amount decimal(10,2); a
//	                         row-level security predicate customer = SUSER_SNAME()
//	                         shows each login its own rows (Config.Data)
//	lab.connection_info      (labdb) the delegation evidence of this connection:
//	                         session_id, login_name, client_principal, auth_scheme,
//	                         gss_mech (SPNEGO/krb5, krb5, SPNEGO/ms-krb5, ap-req),
//	                         service_principal (ticket sname@realm), ticket_etype,
//	                         ticket_kvno, ticket_flags, forwardable, forwarded,
//	                         delegation ("none", "unconstrained (forwarded TGT)",
//	                         "constrained (S4U2Proxy)"), s4u2proxy_target and
//	                         transited_services (PAC S4U_DELEGATION_INFO, MS-PAC 2.9),
//	                         delegated_tgt (a TGT was forwarded to this server),
//	                         mutual_auth, auth_time, ticket_end_time,
//	                         client_net_address, encrypt_option (FALSE, TRUE,
//	                         LOGIN_ONLY, STRICT), tds_version, client_app,
//	                         client_interface
//
// Example: SELECT delegation, s4u2proxy_target, transited_services FROM lab.connection_info
//
// # Events
//
// Config.Events receives, stamped Host=Config.Host and Tier "sql":
// 18453 login succeeded, 18456 login failed (State = the errorlog state,
// Reason = a machine-readable cause), 18452 untrusted domain / SSPI failure
// (Code, CodeName, Status, Reason from krb.AcceptError; Service, EType,
// KVNO of the refused ticket), and 17310 when a connection's goroutine
// panicked. Kerberos logins carry Client, Service, EType, KVNO,
// TicketFlags, Mechanism ("constrained"/"unconstrained"), Target and
// Transited (PAC), Delegated, Account (Config.ServiceAccount), Address.
package sqltier
