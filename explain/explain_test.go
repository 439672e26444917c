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
