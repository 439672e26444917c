package ldap

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/doublehop/doublehop/dtyp"
	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// Conn is an LDAP client connection, what LDP.EXE or ldapsearch is to a DC:
// the lab's workstation and scenarios read and write the directory with it.
// It binds with GSS-SPNEGO and no security layer (as impacket and LDP's
// default Negotiate bind without signing do), so it is plain LDAP after the bind.
type Conn struct {
	c       net.Conn
	r       *bufio.Reader
	id      int64
	Timeout time.Duration // per request, default 15 s
}

// NewConn wraps a connection to a DC's LDAP port.
func NewConn(c net.Conn) *Conn { return &Conn{c: c, r: bufio.NewReader(c), Timeout: 15 * time.Second} }

// Close sends an UnbindRequest and closes the connection.
func (c *Conn) Close() error {
	c.id++
	c.c.Write(Envelope(c.id, ber.Encode(ber.ClassApplication, ber.TypePrimitive, OpUnbindRequest, nil, "UnbindRequest")))
	return c.c.Close()
}

func (c *Conn) roundTrip(op *ber.Packet, controls ...*ber.Packet) (int64, error) {
	c.id++
	c.c.SetDeadline(time.Now().Add(c.Timeout))
	_, err := c.c.Write(Envelope(c.id, op, controls...))
	return c.id, err
}

func (c *Conn) read(id int64) (*Message, error) {
	for {
		b, err := ReadFrame(c.r, MaxMessage)
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("ldap: the server closed the connection")
			}
			return nil, err
		}
		m, err := DecodeMessage(b)
		if err != nil {
			return nil, err
		}
		if m.ID == 0 && int(m.Op.Tag) == OpExtendedResponse {
			code, diag := resultOf(m.Op)
			return nil, &Error{Code: code, Message: "notice of disconnection: " + diag}
		}
		if m.ID == id {
			return m, nil
		}
	}
}

// resultOf reads an LDAPResult's code and diagnostic message.
func resultOf(op *ber.Packet) (ResultCode, string) {
	code, _ := Int(Child(op, 0))
	return ResultCode(code), Str(Child(op, 2))
}

// BindSPNEGO binds with a SPNEGO token (SASL GSS-SPNEGO, MS-ADTS 5.1.1.1.2)
// and returns the server's reply token (the AP-REP when mutual was asked).
func (c *Conn) BindSPNEGO(token []byte) ([]byte, error) {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, OpBindRequest, nil, "BindRequest")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "version"))
	op.AppendChild(Octets(""))
	sasl := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "sasl")
	sasl.AppendChild(Octets("GSS-SPNEGO"))
	sasl.AppendChild(Octets(string(token)))
	op.AppendChild(sasl)
	id, err := c.roundTrip(op)
	if err != nil {
		return nil, err
	}
	m, err := c.read(id)
	if err != nil {
		return nil, err
	}
	if code, diag := resultOf(m.Op); code != Success {
		return nil, &Error{Code: code, Message: diag}
	}
	for _, x := range m.Op.Children {
		if x.ClassType == ber.ClassContext && x.Tag == 7 {
			return Val(x), nil
		}
	}
	return nil, nil
}

// Scopes for Search (RFC 4511 §4.5.1.2).
const (
	ScopeBase    = 0
	ScopeOne     = 1
	ScopeSubtree = 2
)

// NewSearchOp builds a SearchRequest (RFC 4511 §4.5.1).
func NewSearchOp(base string, scope int, filter *ber.Packet, attrs []string, sizeLimit int) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, OpSearchRequest, nil, "SearchRequest")
	p.AppendChild(Octets(base))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(scope), "scope"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "derefAliases"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(sizeLimit), "sizeLimit"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "timeLimit"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "typesOnly"))
	p.AppendChild(filter)
	a := ber.NewSequence("attributes")
	for _, s := range attrs {
		a.AppendChild(Octets(s))
	}
	p.AppendChild(a)
	return p
}

// CompileFilter turns RFC 4515 text into a filter element (go-ldap's parser).
func CompileFilter(s string) (*ber.Packet, error) { return goldap.CompileFilter(s) }

// Search runs a search, page by page (RFC 2696) as AD tools do, and returns
// every entry.
func (c *Conn) Search(base string, scope int, filter string, attrs ...string) ([]*Entry, error) {
	fp, err := CompileFilter(filter)
	if err != nil {
		return nil, fmt.Errorf("filter %s: %w", filter, err)
	}
	var out []*Entry
	var cookie []byte
	for page := 0; page < 10000; page++ {
		id, err := c.roundTrip(NewSearchOp(base, scope, fp, attrs, 0), NewControl(OIDPagedResults, false, PagingValue(MaxPage, cookie)))
		if err != nil {
			return nil, err
		}
		cookie = nil
		for {
			m, err := c.read(id)
			if err != nil {
				return nil, err
			}
			if int(m.Op.Tag) == OpSearchEntry {
				out = append(out, decodeEntry(m.Op))
				continue
			}
			if int(m.Op.Tag) != OpSearchDone {
				continue // references
			}
			if code, diag := resultOf(m.Op); code != Success {
				return out, &Error{Code: code, Message: diag}
			}
			for _, ctl := range m.Controls {
				if ctl.OID == OIDPagedResults {
					_, cookie, _ = ParsePaging(ctl.Value)
				}
			}
			break
		}
		if len(cookie) == 0 {
			return out, nil
		}
	}
	return out, fmt.Errorf("ldap: too many pages")
}

// MaxPage is the page size the client asks for (AD's MaxPageSize).
const MaxPage = 1000

func decodeEntry(op *ber.Packet) *Entry {
	e := &Entry{DN: Str(Child(op, 0))}
	for _, a := range Child(op, 1).Children {
		at := Attr{Name: Str(Child(a, 0))}
		for _, v := range Child(a, 1).Children {
			at.Vals = append(at.Vals, append([]byte(nil), Val(v)...))
		}
		e.attrs = append(e.attrs, at)
	}
	return e
}

// Modify operations (RFC 4511 §4.6).
const (
	ModAdd     = 0
	ModDelete  = 1
	ModReplace = 2
)

// Change is one modification.
type Change struct {
	Op     int
	Attr   string
	Values [][]byte
}

// Modify changes one entry.
func (c *Conn) Modify(dn string, changes ...Change) error {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, OpModifyRequest, nil, "ModifyRequest")
	op.AppendChild(Octets(dn))
	seq := ber.NewSequence("changes")
	for _, ch := range changes {
		x := ber.NewSequence("change")
		x.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(ch.Op), "operation"))
		pa := ber.NewSequence("modification")
		pa.AppendChild(Octets(ch.Attr))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		for _, v := range ch.Values {
			set.AppendChild(Octets(string(v)))
		}
		pa.AppendChild(set)
		x.AppendChild(pa)
		seq.AppendChild(x)
	}
	op.AppendChild(seq)
	id, err := c.roundTrip(op)
	if err != nil {
		return err
	}
	m, err := c.read(id)
	if err != nil {
		return err
	}
	if code, diag := resultOf(m.Op); code != Success {
		return &Error{Code: code, Message: diag}
	}
	return nil
}

// WriteLDIF prints entries as ldapsearch and LDP show them: binary values
// that AD tools decode (objectSid, objectGUID, the RBCD security descriptor)
// in their text form, other binary values base64 ("attr:: …").
func WriteLDIF(w io.Writer, entries []*Entry) {
	for _, e := range entries {
		fmt.Fprintf(w, "dn: %s\n", e.DN)
		for _, a := range e.attrs {
			for _, v := range a.Vals {
				fmt.Fprintf(w, "%s\n", ldifLine(a.Name, v))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "# numEntries: %d\n", len(entries))
}

func ldifLine(name string, v []byte) string {
	switch strings.ToLower(name) {
	case "objectsid":
		if s, err := dtyp.BinarySIDString(v); err == nil {
			return name + ": " + s
		}
	case "objectguid":
		if len(v) == 16 {
			return fmt.Sprintf("%s: %x-%x-%x-%x-%x", name, reverse(v[0:4]), reverse(v[4:6]), reverse(v[6:8]), v[8:10], v[10:16])
		}
	case "msds-allowedtoactonbehalfofotheridentity":
		if sd, err := dtyp.ParseSecurityDescriptor(v); err == nil {
			return name + ": " + sd.SDDL()
		}
	}
	if utf8.Valid(v) && !strings.ContainsAny(string(v), "\x00\r\n") {
		return name + ": " + string(v)
	}
	return name + ":: " + base64.StdEncoding.EncodeToString(v)
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// Values returns an attribute's values as strings, in the server's order.
func (e *Entry) Values(name string) []string {
	a, ok := e.Get(name)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range a.Vals {
		out = append(out, string(v))
	}
	return out
}
