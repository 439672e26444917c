package explain

import (
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
)

// explain says "don't know" rather than guess when the evidence fits no rule.
func TestUnknownWhenEvidenceDoesNotFit(t *testing.T) {
	now := time.Now()
	evs := []events.Event{
		{Time: now, Host: "web.lab.local", Tier: "web", ID: events.TierStatus, Outcome: events.Failure, Message: "something odd"},
	}
	if d := Explain(Input{Events: evs}); d.ID != Unknown {
		t.Fatalf("got %q (%s), want unknown", d.ID, d.Summary)
	}
	if d := Explain(Input{}); d.ID != Unknown {
		t.Fatalf("no events: %q", d.ID)
	}
}

// A failure followed by a success of the same logon is reported as fixed.
func TestFixedLater(t *testing.T) {
	now := time.Now()
	evs := []events.Event{
		{Time: now, Host: "web.lab.local", Tier: "web", ID: events.LogonFailure, Outcome: events.Failure, CodeName: "KRB_AP_ERR_MODIFIED"},
		{Time: now.Add(time.Second), Host: "web.lab.local", Tier: "web", ID: events.LogonSuccess, Outcome: events.Success},
	}
	if d := Explain(Input{Events: evs}); d.ID != OK {
		t.Fatalf("got %q", d.ID)
	}
}

// The seed's diagnosis needs both halves of the evidence: a KDC ticket for
// another account and the web tier's KRB_AP_ERR_MODIFIED.
func TestMissingHTTPSPN(t *testing.T) {
	now := time.Now()
	tgs := events.Event{Time: now, Host: "dc.lab.local", Tier: "kdc", ID: events.ServiceTicket, Outcome: events.Success,
		Client: "bob@LAB.LOCAL", Service: "HTTP/web.lab.local", Account: "WEB$", Reason: "SPN_MAPPED_TO_HOST"}
	web := events.Event{Time: now.Add(time.Millisecond), Host: "web.lab.local", Tier: "web", ID: events.LogonFailure, Outcome: events.Failure,
		Service: "HTTP/web.lab.local", Account: "svc_iispool", CodeName: "KRB_AP_ERR_MODIFIED", Reason: "TICKET_WRONG_KEY"}
	d := Explain(Input{Events: []events.Event{tgs, web}})
	if d.ID != "missing-http-spn" || len(d.Fix) != 1 || d.Fix[0] != "doublehop setspn -S HTTP/web.lab.local svc_iispool" {
		t.Fatalf("%+v", d)
	}
	// Without the KDC's side of the story it must not guess the cause.
	if d := Explain(Input{Events: []events.Event{web}}); d.ID == "missing-http-spn" || d.ID == "spn-on-wrong-account" {
		t.Fatalf("guessed %q from the web event alone", d.ID)
	}
}

// A success for Bob does not fix Alice's failure; a later logon of the same
// client does fix a wrong password.
func TestFixedOnlyForTheSameParty(t *testing.T) {
	now := time.Now()
	alice := events.Event{Time: now, Host: "sql.lab.local", Tier: "sql", ID: events.SQLLoginFailed, Outcome: events.Failure,
		Login: `LAB\alice`, AuthScheme: "KERBEROS", State: 12}
	bob := events.Event{Time: now.Add(time.Second), Host: "sql.lab.local", Tier: "sql", ID: events.SQLLoginSuccess, Outcome: events.Success, Login: `LAB\bob`}
	if d := Explain(Input{Events: []events.Event{alice, bob}}); d.ID != "sql-login-denied" {
		t.Fatalf("bob's success hid alice's denial: %q", d.ID)
	}
	wrong := events.Event{Time: now, Host: "dc.lab.local", Tier: "kdc", ID: events.PreauthFailed, Outcome: events.Failure,
		Client: "bob@LAB.LOCAL", Service: "krbtgt/LAB.LOCAL", CodeName: "KDC_ERR_PREAUTH_FAILED"}
	right := events.Event{Time: now.Add(time.Second), Host: "dc.lab.local", Tier: "kdc", ID: events.TGTRequested, Outcome: events.Success,
		Client: "bob@LAB.LOCAL", Service: "krbtgt/LAB.LOCAL"}
	if d := Explain(Input{Events: []events.Event{wrong}}); d.ID != "wrong-password" {
		t.Fatalf("wrong password: %q", d.ID)
	}
	if d := Explain(Input{Events: []events.Event{wrong, right}}); d.ID != OK {
		t.Fatalf("a later good logon should clear it: %q", d.ID)
	}
}
