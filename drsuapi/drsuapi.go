// Package drsuapi is the DC's directory replication service (MS-DRSR), the
// interface domain controllers replicate through and that DCSync tools
// borrow: DRSBind, DRSUnbind, DRSGetNCChanges for one object and for an
// account's secrets (EXOP_REPL_OBJ, EXOP_REPL_SECRET), DRSCrackNames and
// DRSDomainControllerInfo, served over dcerpc with packet privacy. Only
// domain controllers and Domain Admins hold "Replicating Directory
// Changes All"; everyone else is refused with ERROR_DS_DRA_ACCESS_DENIED,
// and every replication of secrets is a 4662 naming that right, which is
// how defenders see a DCSync.
package drsuapi

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/dcerpc/ndr"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/ntds"
)

// Syntax is the drsuapi interface, v4.0.
var Syntax = dcerpc.SyntaxID{UUID: dcerpc.MustUUID("e3514235-4b06-11d1-ab04-00c04fc2dcd2"), Major: 4}

// Operation numbers (MS-DRSR 4.1).
const (
	opBind         = 0
	opUnbind       = 1
	opGetNCChanges = 3
	opCrackNames   = 12
	opDCInfo       = 16
)

// DRS_EXTENSIONS flags (MS-DRSR 5.39) this DC offers, and the one secrets need.
const (
	extBase                 = 0x00000001
	extRemoveAPI            = 0x00000004
	extMoveReqV2            = 0x00000008
	extDCInfoV1             = 0x00000020
	extRestoreUSNOpt        = 0x00000040
	extInstanceTypeNotReq   = 0x00001000
	extCryptoBind           = 0x00002000
	extStrongEncryption     = 0x00008000
	extDCInfoVFFFFFFFF      = 0x00010000
	extTransitiveMembership = 0x00020000
	extPostBeta3            = 0x00080000
	extGetChgReqV5          = 0x00100000
	extGetMemberships2      = 0x00200000
	extGetChgReqV6          = 0x00400000
	extNonDomainNCs         = 0x00800000
	extGetChgReqV8          = 0x01000000
	extGetChgReplyV5        = 0x02000000
	extGetChgReplyV6        = 0x04000000
	extDCInfoV2             = 0x00000800
	extGetChgReqV10         = 0x40000000

	serverExtensions = extBase | extRemoveAPI | extMoveReqV2 | extDCInfoV1 | extRestoreUSNOpt | extInstanceTypeNotReq |
		extCryptoBind | extStrongEncryption | extDCInfoVFFFFFFFF | extTransitiveMembership | extPostBeta3 |
		extGetChgReqV5 | extGetMemberships2 | extGetChgReqV6 | extNonDomainNCs | extGetChgReqV8 | extGetChgReplyV5 |
		extGetChgReplyV6 | extDCInfoV2 | extGetChgReqV10
)

// Win32 errors the calls return (MS-ERREF 2.2).
const (
	errSuccess           = 0
	errInvalidParameter  = 87
	errNotSupported      = 50
	errDRAAccessDenied   = 8453       // ERROR_DS_DRA_ACCESS_DENIED
	errDRABadDN          = 8439       // ERROR_DS_DRA_BAD_DN
	errDRAInvalidParam   = 8437       // ERROR_DS_DRA_INVALID_PARAMETER
	errDRANotSupported   = 8440       // ERROR_DS_DRA_NOT_SUPPORTED
	errAlgorithmMismatch = 0x80090331 // SEC_E_ALGORITHM_MISMATCH: the client cannot take encrypted secrets
)

// The extended rights replication checks (MS-ADTS 5.1.3.2.1).
const (
	RightGetChanges    = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2" // DS-Replication-Get-Changes
	RightGetChangesAll = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2" // DS-Replication-Get-Changes-All
)

// Config configures the service.
type Config struct {
	Directory *directory.Store
	Host      string // dc.lab.local
	Account   string // DC$
	Events    events.Sink
	Logger    *slog.Logger
	Now       func() time.Time
}

// Server serves drsuapi.
type Server struct {
	cfg  Config
	ev   events.Sink
	ntds ntds.Cache
}

// New makes the service; it holds no global state.
func New(cfg Config) *Server {
	if cfg.Host == "" {
		cfg.Host = "dc.lab.local"
	}
	if cfg.Account == "" {
		cfg.Account = "DC$"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	return &Server{cfg: cfg, ev: events.Stamp(ev, cfg.Host, "kdc", cfg.Now), ntds: ntds.Cache{Directory: cfg.Directory}}
}

// Interface is the service as a dcerpc interface: packet privacy only, as
// it carries secrets.
func (s *Server) Interface() *dcerpc.Interface {
	return &dcerpc.Interface{Name: "drsuapi", Syntax: Syntax, Handler: s, MinLevel: dcerpc.LevelPrivacy}
}

// bindState is what a DRS_HANDLE stands for: the client's extensions and
// who bound.
type bindState struct {
	clientExt uint32
	user      string
}

// ServeRPC implements dcerpc.Handler.
func (s *Server) ServeRPC(ctx context.Context, c *dcerpc.Call) ([]byte, error) {
	if c.Auth == nil {
		return nil, dcerpc.FaultAccessDenied
	}
	switch c.Opnum {
	case opBind:
		return s.bind(c)
	case opUnbind:
		return s.unbind(c)
	case opGetNCChanges:
		return s.getNCChanges(c)
	case opCrackNames:
		return s.crackNames(c)
	case opDCInfo:
		return s.dcInfo(c)
	}
	return nil, dcerpc.FaultOpRangeError
}

// handle reads a DRS_HANDLE and finds its bind.
func handle(r *ndr.Reader, c *dcerpc.Call) (*bindState, [20]byte, error) {
	var h [20]byte
	copy(h[:], r.Raw(20))
	if r.Err() != nil {
		return nil, h, r.Err()
	}
	v, ok := c.Assoc.Handle(h)
	b, _ := v.(*bindState)
	if !ok || b == nil {
		return nil, h, dcerpc.FaultContextMismatch
	}
	return b, h, nil
}

// bind is IDL_DRSBind (MS-DRSR 4.1.3): the client's DSA GUID and
// extensions in, this DC's extensions and a handle out.
func (s *Server) bind(c *dcerpc.Call) ([]byte, error) {
	r := ndr.NewReader(c.Stub)
	if r.U32() != 0 { // puuidClientDsa, a top-level unique pointer: its referent follows
		r.GUID()
	}
	var clientExt uint32
	if r.U32() != 0 {
		cb := r.Count(1, 10000)
		if n := r.U32(); r.Err() == nil && int(n) != cb {
			r.Failf("DRS_EXTENSIONS cb %d with a conformant size of %d", n, cb)
		}
		ext := r.Raw(cb)
		if len(ext) >= 4 {
			clientExt = uint32(ext[0]) | uint32(ext[1])<<8 | uint32(ext[2])<<16 | uint32(ext[3])<<24
		}
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	v := s.cfg.Directory.View()
	h, err := c.Assoc.NewHandle(&bindState{clientExt: clientExt, user: c.Auth.User})
	if err != nil {
		return nil, dcerpc.FaultAccessDenied
	}
	// DRS_EXTENSIONS_INT (MS-DRSR 5.39), 48 bytes after cb: flags, the
	// site's GUID, a process id, the replication epoch, the extended flags,
	// the configuration NC's GUID.
	ext := make([]byte, 48)
	put32(ext, 0, serverExtensions)
	copy(ext[4:20], ntds.GUID("site:"+v.Lab.DomainSID))
	put32(ext, 20, 0x1234)
	copy(ext[32:48], ntds.GUID("configuration:"+v.Lab.DomainSID))
	w := &ndr.Writer{}
	w.Ref(true, func() {
		w.Conformant(len(ext))
		w.U32(uint32(len(ext)))
		w.Raw(ext)
	})
	w.Flush()
	w.Raw(h[:])
	w.U32(errSuccess)
	return w.Bytes(), nil
}

// unbind is IDL_DRSUnbind (4.1.25): the handle is closed and zeroed.
func (s *Server) unbind(c *dcerpc.Call) ([]byte, error) {
	r := ndr.NewReader(c.Stub)
	_, h, err := handle(r, c)
	if err != nil {
		return nil, err
	}
	c.Assoc.CloseHandle(h)
	w := &ndr.Writer{}
	w.Raw(make([]byte, 20))
	w.U32(errSuccess)
	return w.Bytes(), nil
}

func put32(b []byte, off int, v uint32) {
	b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// caller is the account that bound, as the directory has it.
func (s *Server) caller(v *directory.View, b *bindState) (*directory.Entry, bool) {
	e, ok := v.Account(b.user)
	return e, ok
}

// mayReplicateSecrets is "Replicating Directory Changes All" on the domain
// as AD grants it by default: domain controllers, Domain Admins,
// Enterprise Admins and Administrators.
func mayReplicateSecrets(e *directory.Entry) bool {
	if e == nil {
		return false
	}
	a := e.Account
	return a.IsDC() || a.RID == 500 || a.InGroup("Domain Admins") || a.InGroup("Enterprise Admins") ||
		a.InGroup("Administrators") || a.InGroup("Domain Controllers")
}

// destinationRODC is the read-only DC whose NTDS Settings object has the
// request's destination DSA GUID, if it is one.
func (s *Server) destinationRODC(v *directory.View, t *ntds.Tree, dsa [16]byte) *directory.Entry {
	for _, o := range v.Lab.Objects {
		if !strings.EqualFold(o.Class, "nTDSDSA") {
			continue
		}
		le, ok := t.Lookup(o.DN)
		if !ok {
			continue
		}
		if g, ok := le.Get("objectGUID"); !ok || string(g.Vals[0]) != string(dsa[:]) {
			continue
		}
		_, server, _ := strings.Cut(o.DN, ",")
		se, ok := t.Lookup(server)
		if !ok {
			return nil
		}
		ref, ok := se.Get("serverReference")
		if !ok {
			return nil
		}
		ae, ok := t.Lookup(string(ref.Vals[0]))
		if !ok || ae.Account == "" {
			return nil
		}
		if e, ok := v.Account(ae.Account); ok && e.RODC != nil {
			return e
		}
	}
	return nil
}

// audit logs the 4662 a replication request is on the domain object.
func (s *Server) audit(c *dcerpc.Call, who, object, right string, ok bool, why string) {
	name := map[string]string{RightGetChanges: "DS-Replication-Get-Changes", RightGetChangesAll: "DS-Replication-Get-Changes-All"}[right]
	out, verb := events.Success, "granted"
	if !ok {
		out, verb = events.Failure, "denied"
	}
	msg := fmt.Sprintf("An operation was performed on an object: Control Access %s {%s} on %s by %s (%s).", name, right, object, who, verb)
	if why != "" {
		msg += " " + why
	}
	s.ev.Emit(events.Event{ID: events.ObjectOperation, Outcome: out, Client: who, Account: s.cfg.Account, Target: object,
		Reason: strings.ToUpper(strings.ReplaceAll(name, "-", "_")), Address: c.Remote, Message: msg})
}
