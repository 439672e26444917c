package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// AppendJSON writes exactly what encoding/json writes for the struct.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	cases := []Event{
		{},
		{Time: time.Date(2026, 11, 25, 13, 0, 0, 123456789, time.UTC), Host: "dc.lab.local", Tier: "kdc", ID: 4769, Outcome: Failure,
			Message: `A "quoted" <tag> & \ back` + "\n\t\x01 é 日本 \u2028 \xff", Client: "bob@LAB.LOCAL", Service: "HTTP/web.lab.local",
			Account: "WEB$", EType: 18, KVNO: 3, TicketFlags: []string{"forwardable", "pre-authent"}, Code: 41, CodeName: "KRB_AP_ERR_MODIFIED",
			Status: "0xC000006A", Reason: "R", Mechanism: "rbcd", Transited: []string{"svc_iispool@LAB.LOCAL"}, Target: "MSSQLSvc/x:1",
			Evidence: "e", LogonType: 3, Package: "Kerberos", Impersonation: "Delegation", Delegated: true, State: 12, Login: `LAB\alice`,
			AuthScheme: "KERBEROS", Address: "127.0.0.1:1"},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), ID: 18456, TicketFlags: []string{}, Code: -1},
	}
	for _, e := range cases {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	}
}
