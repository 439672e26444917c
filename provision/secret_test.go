package provision

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/doublehop/doublehop/directory"
)

// A fake API server with the two calls the Job makes: the Secret is created
// once, with every file, and a second run keeps it.
func TestEnsureSecretCreatesOnceAndKeeps(t *testing.T) {
	var mu sync.Mutex
	stored := map[string][]byte{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/api/v1/namespaces/seat-3/secrets/seat":
			if stored["seat"] == nil {
				http.Error(w, `{"kind":"Status","code":404}`, http.StatusNotFound)
				return
			}
			w.Write(stored["seat"])
		case r.Method == "POST" && r.URL.Path == "/api/v1/namespaces/seat-3/secrets":
			b, _ := io.ReadAll(r.Body)
			stored["seat"] = b
			w.WriteHeader(http.StatusCreated)
			w.Write(b)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	k := &InCluster{Server: srv.URL, Token: "tok", Namespace: "seat-3", Client: srv.Client()}
	calls := 0
	make := func() (map[string][]byte, error) {
		calls++
		l, pw, err := Seat(directory.Default(), 3, []string{"Seat-3.Training.Example.com"})
		if err != nil {
			return nil, err
		}
		return SeatFiles(l, pw, "node1:30006")
	}
	made, err := k.EnsureSecret(context.Background(), "seat", map[string]string{"doublehop.org/seat": "3"}, make)
	if err != nil || !made {
		t.Fatalf("first run: made=%v err=%v", made, err)
	}
	made, err = k.EnsureSecret(context.Background(), "seat", nil, make)
	if err != nil || made || calls != 1 {
		t.Fatalf("second run: made=%v err=%v, %d realms drawn (want the first kept)", made, err, calls)
	}
	var s struct {
		APIVersion, Kind string
		Metadata         struct{ Name, Namespace string }
		Data             map[string][]byte
	}
	if err := json.Unmarshal(stored["seat"], &s); err != nil {
		t.Fatal(err)
	}
	if s.APIVersion != "v1" || s.Kind != "Secret" || s.Metadata.Name != "seat" || s.Metadata.Namespace != "seat-3" {
		t.Errorf("secret header: %+v", s)
	}
	for _, k := range []string{"directory.yaml", "web.keytab", "web.yaml", "sql.keytab", "sql.yaml", "krb5.conf", "bob.password", "attendee.krb5.conf"} {
		if len(s.Data[k]) == 0 {
			t.Errorf("secret has no %s", k)
		}
	}
	if !strings.HasPrefix(string(s.Data["bob.password"]), "Bob-") || !strings.HasSuffix(string(s.Data["bob.password"]), "-3!") {
		t.Errorf("bob.password %q", s.Data["bob.password"])
	}
	if !strings.Contains(string(s.Data["directory.yaml"]), "HTTP/seat-3.training.example.com") {
		t.Error("the public host's SPN is not on the web account")
	}
	if !strings.Contains(string(s.Data["attendee.krb5.conf"]), "kdc = node1:30006") {
		t.Errorf("attendee.krb5.conf:\n%s", s.Data["attendee.krb5.conf"])
	}
	if strings.Contains(string(s.Data["web.yaml"]), "password") {
		t.Error("the web tier's settings hold a password")
	}
}

// Two seats never share a key: different krbtgt and service passwords.
func TestSeatsHaveTheirOwnKeys(t *testing.T) {
	a, _, _ := Seat(directory.Default(), 1, nil)
	b, _, _ := Seat(directory.Default(), 2, nil)
	for _, name := range []string{"krbtgt", "svc_iispool", "svc_mssqlserver", "bob"} {
		if a.Account(name).Password == b.Account(name).Password || a.Account(name).Password == directory.Default().Account(name).Password {
			t.Errorf("%s: the same password in two seats or as in the default lab", name)
		}
	}
}
