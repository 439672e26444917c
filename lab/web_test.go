package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/webtier"
)

func webPort(l *Lab) string { return l.WebAddr[strings.LastIndexByte(l.WebAddr, ':')+1:] }

// MIT kinit + curl --negotiate shows "running as: LAB\bob" (issue 3).
func TestCurlNegotiate(t *testing.T) {
	l := startLab(t, nil)
	cc := filepath.Join(t.TempDir(), "cc")
	if out, err := tool(t, l, cc, l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	p := webPort(l)
	out, err := tool(t, l, cc, "", "curl", "-s", "--negotiate", "-u", ":", "--resolve", "web.lab.local:"+p+":127.0.0.1", "http://web.lab.local:"+p+"/")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	mustContain(t, "curl page", out, "This page is running as: <b>LAB\\bob</b>", "HTTP/web.lab.local", "svc_iispool")
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.LogonSuccess && e.Client == "bob@LAB.LOCAL" && e.LogonType == 3 && e.Package == "Kerberos"
	}); !ok {
		t.Fatal("no 4624 (logon type 3, Kerberos) for bob on the web host")
	}
}

// Our client's cache is read by MIT klist, and our client uses a cache MIT kinit wrote.
func TestClientCacheInterop(t *testing.T) {
	l := startLab(t, nil)
	c := bobClient(t, l, 0)
	if _, err := c.Kinit(context.Background(), "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	out, err := tool(t, l, c.CCachePath(), "", "klist", "-e", "-f")
	if err != nil {
		t.Fatalf("MIT klist on our cache: %v\n%s", err, out)
	}
	mustContain(t, "klist", out, "Default principal: bob@LAB.LOCAL", "krbtgt/LAB.LOCAL@LAB.LOCAL", "Flags: FRIA")

	mit := bobClient(t, l, 0)
	if out, err := tool(t, l, mit.CCachePath(), l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	resp, err := mit.Get(context.Background(), l.WebURL, client.GetOptions{})
	if err != nil {
		t.Fatalf("get with MIT's cache: %v", err)
	}
	if resp.Status != 200 || !bytes.Contains(resp.Body, []byte(`running as: <b>LAB\bob</b>`)) || resp.Mutual != "verified" {
		t.Fatalf("status %d mutual %q body:\n%s", resp.Status, resp.Mutual, resp.Body)
	}
}

// The seed's Part I, scripted: HTTP SPN on nobody → KRB_AP_ERR_MODIFIED, 4625
// on web, 4769 naming WEB$, client event 4; setspn -S live → the page says Bob.
// The short name needs HTTP/web too.
func TestSeedPartI(t *testing.T) {
	l := startLab(t, func(lab *directory.Lab) { lab.Account("svc_iispool").SPNs = nil })
	c := bobClient(t, l, 0)
	ctx := context.Background()
	if _, err := c.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(ctx, l.WebURL, client.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 401 || resp.ServerError == nil || resp.ServerError.Code != kerr.KRB_AP_ERR_MODIFIED {
		t.Fatalf("want 401 with KRB_AP_ERR_MODIFIED, got %d %v", resp.Status, resp.ServerError)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.LogonFailure }); !ok || e.CodeName != "KRB_AP_ERR_MODIFIED" || !strings.Contains(e.Status, "0xC000006A") {
		t.Fatalf("web 4625: %+v", e)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.ServiceTicket && e.Service == "HTTP/web.lab.local" }); !ok || e.Account != "WEB$" {
		t.Fatalf("KDC 4769 should name WEB$: %+v", e)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.KerberosClientError }); !ok || e.CodeName != "KRB_AP_ERR_MODIFIED" {
		t.Fatalf("client event 4: %+v", e)
	}
	var w bytes.Buffer
	if err := directory.SetSPN(l.Store, []string{"-S", "HTTP/web.lab.local", "svc_iispool"}, &w); err != nil {
		t.Fatal(err)
	}
	c.Kdestroy() // the old ticket (for WEB$) is still cached: log on again, as klist purge would
	c.Kinit(ctx, "bob", l.Password("bob"))
	resp, err = c.Get(ctx, l.WebURL, client.GetOptions{})
	if err != nil || resp.Status != 200 || !bytes.Contains(resp.Body, []byte(`running as: <b>LAB\bob</b>`)) {
		t.Fatalf("after setspn: %v %d\n%s", err, resp.Status, resp.Body)
	}
	short := strings.Replace(l.WebURL, "web.lab.local", "web", 1)
	resp, err = c.Get(ctx, short, client.GetOptions{})
	if err != nil || resp.SPN != "HTTP/web" || resp.Status != 401 || resp.ServerError == nil || resp.ServerError.Code != kerr.KRB_AP_ERR_MODIFIED {
		t.Fatalf("short name without HTTP/web: err=%v spn=%s status=%d kerr=%v", err, resp.SPN, resp.Status, resp.ServerError)
	}
	directory.SetSPN(l.Store, []string{"-S", "HTTP/web", "svc_iispool"}, &w)
	c.Kdestroy()
	c.Kinit(ctx, "bob", l.Password("bob"))
	resp, err = c.Get(ctx, short, client.GetOptions{})
	if err != nil || resp.Status != 200 {
		t.Fatalf("short name after setspn -S HTTP/web: %v %d", err, resp.Status)
	}
}

func getJSON(t *testing.T, c *client.Client, url string) (*client.Response, webtier.Page) {
	t.Helper()
	resp, err := c.Get(context.Background(), url, client.GetOptions{Accept: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	var p webtier.Page
	if resp.Status == 200 {
		if err := json.Unmarshal(resp.Body, &p); err != nil {
			t.Fatalf("%v: %s", err, resp.Body)
		}
	}
	return resp, p
}

func TestImpersonationOnOff(t *testing.T) {
	l := startLab(t, nil)
	c := bobClient(t, l, 0)
	c.Kinit(context.Background(), "bob", l.Password("bob"))
	if _, p := getJSON(t, c, l.WebURL); p.RunningAs != `LAB\bob` {
		t.Fatalf("impersonate on: running as %q", p.RunningAs)
	}
	if _, err := l.Store.Update(func(lab *directory.Lab) error { lab.Web.Impersonate = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, p := getJSON(t, c, l.WebURL); p.RunningAs != `LAB\svc_iispool` || p.User != `LAB\bob` {
		t.Fatalf("impersonate off: running as %q user %q", p.RunningAs, p.User)
	}
}

// The seed's "Service Unavailable": a keytab the site cannot read gives 503
// and an event, and the site recovers when the keytab is back.
func TestKeytabUnreadable503(t *testing.T) {
	l := startLab(t, nil)
	kt := l.KeytabPath("web")
	if err := os.Rename(kt, kt+".away"); err != nil {
		t.Fatal(err)
	}
	r, err := http.Get("http://" + l.WebAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 503 {
		t.Fatalf("status %d, want 503", r.StatusCode)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.AppPoolIdentityInvalid }); !ok || e.Reason != "KEYTAB_UNREADABLE" {
		t.Fatalf("event: %+v", e)
	}
	os.Rename(kt+".away", kt)
	c := bobClient(t, l, 0)
	c.Kinit(context.Background(), "bob", l.Password("bob"))
	if resp, _ := getJSON(t, c, l.WebURL); resp.Status != 200 {
		t.Fatalf("after restoring the keytab: %d", resp.Status)
	}
}

// A replayed authenticator is refused with KRB_AP_ERR_REPEAT; a skewed client
// clock with KRB_AP_ERR_SKEW; garbage headers get 401 and never a panic.
func TestReplaySkewGarbage(t *testing.T) {
	l := startLab(t, nil)
	ctx := context.Background()
	c := bobClient(t, l, 0)
	c.Kinit(ctx, "bob", l.Password("bob"))
	cred, err := c.ServiceTicket(ctx, "HTTP/web.lab.local")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := gss.InitiatorToken(cred, gss.InitiatorOptions{Flags: gss.FlagMutual, SPNEGO: true})
	if err != nil {
		t.Fatal(err)
	}
	hdr := "Negotiate " + base64.StdEncoding.EncodeToString(tok)
	send := func(h string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", "http://"+l.WebAddr+"/?format=json", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, b
	}
	if r, b := send(hdr); r.StatusCode != 200 {
		t.Fatalf("first use: %d %s", r.StatusCode, b)
	}
	r, _ := send(hdr)
	if code := serverCode(r); r.StatusCode != 401 || code != kerr.KRB_AP_ERR_REPEAT {
		t.Fatalf("replay: %d %v", r.StatusCode, code)
	}
	skewed := bobClient(t, l, 0)
	skewed.Kinit(ctx, "bob", l.Password("bob"))
	cred, _ = skewed.ServiceTicket(ctx, "HTTP/web.lab.local")
	tok, _, _ = gss.InitiatorToken(cred, gss.InitiatorOptions{SPNEGO: true, Flags: gss.FlagMutual, Now: time.Now().Add(10 * time.Minute)})
	r, _ = send("Negotiate " + base64.StdEncoding.EncodeToString(tok))
	if code := serverCode(r); r.StatusCode != 401 || code != kerr.KRB_AP_ERR_SKEW {
		t.Fatalf("skew: %d %v", r.StatusCode, code)
	}
	// A client that asked for no mutual authentication gets a plain challenge.
	tok, _, _ = gss.InitiatorToken(cred, gss.InitiatorOptions{SPNEGO: true, Now: time.Now().Add(20 * time.Minute)})
	r, _ = send("Negotiate " + base64.StdEncoding.EncodeToString(tok))
	if code := serverCode(r); r.StatusCode != 401 || code != 0 {
		t.Fatalf("skew without mutual: %d %v (want no KRB-ERROR token)", r.StatusCode, code)
	}
	for _, h := range []string{"Negotiate", "Negotiate !!!", "Negotiate " + base64.StdEncoding.EncodeToString([]byte{0x60, 0x05, 0x06}),
		"Negotiate " + base64.StdEncoding.EncodeToString(tok[:len(tok)/2]), "NTLM TlRMTVNTUAABAAAA", "Negotiate " + base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x01"))} {
		if r, b := send(h); r.StatusCode != 401 {
			t.Fatalf("header %q: %d %s", h, r.StatusCode, b)
		}
	}
}

func serverCode(r *http.Response) kerr.Code {
	for _, v := range r.Header.Values("WWW-Authenticate") {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(v, "Negotiate"))); err == nil {
			if e, ok := gss.ParseErrorToken(b); ok {
				return e.Code
			}
		}
	}
	return 0
}
