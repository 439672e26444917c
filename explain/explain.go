// Package explain reads the lab's merged event timeline (and the directory)
// and says why a flow failed, at which hop, and which command fixes it — or
// that it does not know. Every rule names the evidence it used.
package explain

import (
	"slices"
	"strings"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
)

// Diagnosis is explain's answer.
type Diagnosis struct {
	ID      string   `json:"id"`             // stable rule id, e.g. missing-http-spn; "unknown" when no rule fits
	Hop     string   `json:"hop"`            // "ws01 → web", "web → sql", "ws01 → dc"
	Summary string   `json:"summary"`        // one sentence
	Why     string   `json:"why"`            // the protocol reason, citing the spec
	Fix     []string `json:"fix"`            // commands to run in order, each pasteable as printed
	Note    string   `json:"note,omitempty"` // what else to know about the fix (not a command)
	// More names other causes this flow's events show, by rule id: fix this
	// one, run the flow again, and explain names the next.
	More     []string       `json:"more,omitempty"`
	Evidence []events.Event `json:"evidence"`
}

// Unknown is the answer when the evidence fits no rule.
const Unknown = "unknown"

// OK is the answer when the last flow succeeded.
const OK = "ok"

// Input is what a diagnosis may look at.
type Input struct {
	Events []events.Event
	View   *directory.View // may be nil (container labs read it from the KDC)
	// StateDir is the lab's state directory, for fixes that name its files
	// (keytabs); "" prints STATE.
	StateDir string
}

// keytabPath is where a tier's keytab lives in the state directory.
func (in Input) keytabPath(tier string) string {
	dir := in.StateDir
	if dir == "" {
		dir = "STATE"
	}
	return dir + "/keytabs/" + tier + ".keytab"
}

// rule inspects the failure and the events around it.
type rule func(in Input, fail events.Event) (Diagnosis, bool)

// Explain diagnoses the most recent failure in the timeline.
func Explain(in Input) Diagnosis {
	evs := in.Events
	if len(evs) == 0 {
		return Diagnosis{ID: Unknown, Summary: "no events: nothing has happened in the lab yet (run a flow first)"}
	}
	// The latest failure that ended a flow: SQL and web failures are the
	// symptoms users see; KDC failures explain them.
	last := -1
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Outcome == events.Failure {
			last = i
			break
		}
	}
	if last < 0 {
		return Diagnosis{ID: OK, Summary: "the last flow succeeded: no failure in the timeline"}
	}
	// A failure followed by a later success of the same kind was fixed.
	if fixedLater(evs, last) {
		return Diagnosis{ID: OK, Summary: "the last failure was followed by a successful flow: it is fixed"}
	}
	in.Events = flow(evs, last)
	fail := evs[last]
	for i, r := range rules {
		if d, ok := r(in, fail); ok {
			// Other causes the same flow shows: named, fixed one at a time.
			for _, later := range rules[i+1:] {
				if o, ok := later(in, fail); ok && o.ID != d.ID && o.ID != "anonymous-logon" && !slices.Contains(d.More, o.ID) && !covered(o.Evidence, d.Evidence) {
					d.More = append(d.More, o.ID)
				}
			}
			return d
		}
	}
	return Diagnosis{ID: Unknown, Summary: "don't know: the evidence fits no known cause",
		Why: "explain only names a cause when the events prove it; look at `doublehop events --failures`", Evidence: []events.Event{fail}}
}

// covered reports evidence that is all part of what already explains it
// (the symptom of the cause found).
func covered(ev, by []events.Event) bool {
	for _, e := range ev {
		found := false
		for _, b := range by {
			if e.ID == b.ID && e.Time.Equal(b.Time) && e.Host == b.Host {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// flow returns the events of the flow that ended at index last: everything
// within a few seconds before it.
func flow(evs []events.Event, last int) []events.Event {
	end := evs[last].Time
	start := last
	for start > 0 && end.Sub(evs[start-1].Time).Seconds() < 5 {
		start--
	}
	return evs[start : last+1]
}

// fixedLater reports a later success of the same kind for the same party:
// the same host and the same principal or login (a success for Bob does not
// fix Alice's failure), or for KDC and workstation failures a later ticket for
// the same client.
func fixedLater(evs []events.Event, last int) bool {
	f := evs[last]
	who := func(e events.Event) string {
		if e.Login != "" && !strings.Contains(e.Login, "ANONYMOUS") {
			return strings.ToLower(e.Login)
		}
		return strings.ToLower(e.Client)
	}
	for _, e := range evs[last+1:] {
		if e.Outcome != events.Success {
			continue
		}
		switch f.Tier {
		case "kdc", "client":
			if (e.ID == events.TGTRequested || e.ID == events.ServiceTicket || e.ID == events.LogonSuccess) &&
				f.Client != "" && strings.EqualFold(e.Client, f.Client) && (f.Service == "" || strings.EqualFold(e.Service, f.Service) || e.ID == events.LogonSuccess) {
				return true
			}
		default:
			if e.Host == f.Host && (e.ID == events.SQLLoginSuccess || e.ID == events.LogonSuccess) && (who(f) == "" || who(e) == who(f)) {
				return true
			}
		}
	}
	return false
}

// find returns the last event in the flow matching f.
func find(evs []events.Event, f func(events.Event) bool) (events.Event, bool) {
	for i := len(evs) - 1; i >= 0; i-- {
		if f(evs[i]) {
			return evs[i], true
		}
	}
	return events.Event{}, false
}

func is(id int, code string) func(events.Event) bool {
	return func(e events.Event) bool {
		return e.ID == id && (code == "" || e.CodeName == code || e.Reason == code)
	}
}

func user(principal string) string { return strings.SplitN(principal, "@", 2)[0] }
