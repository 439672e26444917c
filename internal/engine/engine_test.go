package engine

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEngine serves h on a unix socket and points DOCKER_HOST at it.
func fakeEngine(t *testing.T, apiVersion string, h http.HandlerFunc) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", apiVersion)
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/", h)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	t.Setenv("DOCKER_TLS_VERIFY", "")
}

func TestVersionFiltersAndErrors(t *testing.T) {
	var paths []string
	fakeEngine(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path+"?"+r.URL.RawQuery)
		switch {
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			json.NewEncoder(w).Encode([]map[string]any{{"Id": "abc", "Labels": map[string]string{"org.doublehop.lab": "x"}}})
		case strings.HasSuffix(r.URL.Path, "/containers/nope/json"):
			w.WriteHeader(404)
			io.WriteString(w, `{"message":"No such container: nope"}`)
		case strings.HasSuffix(r.URL.Path, "/images/create"):
			io.WriteString(w, `{"status":"importing"}`+"\n"+`{"errorDetail":{"message":"bad tar"},"error":"bad tar"}`+"\n")
		default:
			w.WriteHeader(500)
		}
	})
	ctx := context.Background()
	c, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() != "1.41" {
		t.Fatalf("version %s, want the engine's older 1.41", c.Version())
	}
	l, err := c.ContainerList(ctx, true, LabelFilter("org.doublehop.lab=x"))
	if err != nil || len(l) != 1 || l[0].ID != "abc" {
		t.Fatalf("list: %v %+v", err, l)
	}
	if want := `/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%7B%22org.doublehop.lab%3Dx%22%3Atrue%7D%7D`; paths[0] != want {
		t.Fatalf("request %s, want %s", paths[0], want)
	}
	_, err = c.ContainerInspect(ctx, "nope")
	if !IsNotFound(err) || !strings.Contains(err.Error(), "No such container: nope") {
		t.Fatalf("inspect of a missing container: %v", err)
	}
	if err := c.ImageImport(ctx, strings.NewReader("x"), "doublehop", "t", nil, "m"); err == nil || err.Error() != "bad tar" {
		t.Fatalf("import: %v, want the stream's error", err)
	}
}

func TestNewerEngineSpokenAtMaxVersion(t *testing.T) {
	fakeEngine(t, "1.52", func(w http.ResponseWriter, r *http.Request) {})
	c, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() != MaxVersion {
		t.Fatalf("version %s, want %s", c.Version(), MaxVersion)
	}
}

func TestNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	if _, err := New(context.Background()); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("err %v, want one naming the socket", err)
	}
	t.Setenv("DOCKER_HOST", "ssh://h")
	if _, err := New(context.Background()); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("err %v", err)
	}
}
