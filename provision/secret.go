package provision

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
)

// SeatFiles are one seat's files by name, as a Kubernetes Secret holds them:
// directory.yaml (the DC's, with the passwords), web.keytab, web.yaml,
// sql.keytab, sql.yaml, krb5.conf (the workstation's), bob.password and, when
// kdcAddr is given, attendee.krb5.conf (a laptop's, TCP to kdcAddr).
func SeatFiles(l *directory.Lab, bobPassword, kdcAddr string) (map[string][]byte, error) {
	tiers, err := Plan(l)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{"bob.password": []byte(bobPassword)}
	for _, t := range tiers {
		for _, f := range t.Files {
			name := path.Base(f.Path)
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("two tiers hold a file named %s", name)
			}
			out[name] = f.Content
		}
	}
	if kdcAddr != "" {
		out["attendee.krb5.conf"] = []byte(HostKrb5Conf(l, kdcAddr))
	}
	return out, nil
}

// WriteDir writes the files to dir (0600: keys and passwords).
func WriteDir(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// InCluster is the Kubernetes API as a pod sees it: the API server from the
// service environment, the pod's service-account token, CA and namespace.
type InCluster struct {
	Server    string // https://host:port
	Token     string
	Namespace string
	Client    *http.Client
}

// ServiceAccountDir is where Kubernetes mounts a pod's credentials.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// LoadInCluster reads the pod's credentials.
func LoadInCluster() (*InCluster, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset)")
	}
	tok, err := os.ReadFile(filepath.Join(ServiceAccountDir, "token"))
	if err != nil {
		return nil, err
	}
	ns, err := os.ReadFile(filepath.Join(ServiceAccountDir, "namespace"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(ServiceAccountDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("service account ca.crt holds no certificate")
	}
	return &InCluster{Server: "https://" + net.JoinHostPort(host, port), Token: strings.TrimSpace(string(tok)), Namespace: strings.TrimSpace(string(ns)),
		Client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}, nil
}

// secret is the part of a core/v1 Secret we write.
type secret struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   secretMeta        `json:"metadata"`
	Type       string            `json:"type"`
	Data       map[string][]byte `json:"data"` // base64 in JSON, as the API wants
}

type secretMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// EnsureSecret creates the Secret name in the pod's namespace from make()
// unless it exists already: a seat keeps its keys when the Job runs again.
// It reports whether it created it.
func (k *InCluster) EnsureSecret(ctx context.Context, name string, labels map[string]string, make func() (map[string][]byte, error)) (bool, error) {
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/secrets", k.Server, k.Namespace)
	code, body, err := k.do(ctx, http.MethodGet, url+"/"+name, nil)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusOK:
		return false, nil
	case code != http.StatusNotFound:
		return false, fmt.Errorf("GET secret %s: HTTP %d: %s", name, code, firstLine(body))
	}
	data, err := make()
	if err != nil {
		return false, err
	}
	b, err := json.Marshal(secret{APIVersion: "v1", Kind: "Secret", Type: "Opaque", Data: data,
		Metadata: secretMeta{Name: name, Namespace: k.Namespace, Labels: labels}})
	if err != nil {
		return false, err
	}
	code, body, err = k.do(ctx, http.MethodPost, url, b)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusConflict: // another run made it first: keep that one
		return false, nil
	case code != http.StatusCreated && code != http.StatusOK:
		return false, fmt.Errorf("POST secret %s: HTTP %d: %s", name, code, firstLine(body))
	}
	return true, nil
}

func (k *InCluster) do(ctx context.Context, method, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+k.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
