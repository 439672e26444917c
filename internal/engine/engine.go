// Package engine is the lab's Docker Engine API client: plain net/http over
// the engine's socket, the request and response bodies as the API's own types
// (github.com/moby/moby/api/types), and only the endpoints the lab, the
// workshop and their tests call. The CLI drives the engine through it, so a
// cold build of `doublehop` compiles no Docker SDK, no OpenTelemetry and no
// testcontainers-go (those stay with package labtest, the harness for test
// suites).
//
// Endpoints are those of the Docker Engine API reference (v1.41 and later);
// the version used is the engine's own, from GET /_ping, capped at MaxVersion.
package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxVersion is the newest API version the client speaks; an older engine is
// spoken to in its own version (the oldest tested: 1.41, Docker 20.10).
const MaxVersion = "1.47"

// Bounds on what is read from the engine.
const (
	maxJSON  = 64 << 20 // one JSON response
	maxError = 64 << 10 // an error body
)

// Client talks to one Docker engine.
type Client struct {
	host    string // as given: unix:///var/run/docker.sock, tcp://h:p
	dial    func(ctx context.Context) (net.Conn, error)
	hc      *http.Client
	version string // API version in use
}

// Error is an answer of the engine other than 2xx.
type Error struct {
	Status  int    // HTTP status
	Message string // the engine's "message"
	Op      string // "POST /containers/create"
}

func (e *Error) Error() string {
	return fmt.Sprintf("docker engine: %s: %s (HTTP %d)", e.Op, e.Message, e.Status)
}

// IsNotFound reports an engine answer 404 (no such container, image, ...).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsConflict reports an engine answer 409 (name in use, already started, ...).
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// Host is where the engine is found: DOCKER_HOST, else the rootful socket,
// else the rootless one ($XDG_RUNTIME_DIR/docker.sock), as the docker CLI looks.
func Host() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	const def = "/var/run/docker.sock"
	if _, err := os.Stat(def); err != nil {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			if p := filepath.Join(rt, "docker.sock"); fileExists(p) {
				return "unix://" + p
			}
		}
	}
	return "unix://" + def
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// New connects to the engine at Host() and agrees on the API version with a
// ping. DOCKER_TLS_VERIFY (TLS to a remote engine) is not supported.
func New(ctx context.Context) (*Client, error) {
	if os.Getenv("DOCKER_TLS_VERIFY") != "" {
		return nil, errors.New("docker engine: DOCKER_TLS_VERIFY is set: the lab talks to a local engine only (unix socket or plain tcp)")
	}
	c, err := newClient(Host())
	if err != nil {
		return nil, err
	}
	v, err := c.Ping(ctx)
	if err != nil {
		return nil, err
	}
	c.version = MaxVersion
	if v != "" && versionLess(v, MaxVersion) {
		c.version = v
	}
	return c, nil
}

func newClient(host string) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	var network, addr string
	switch u.Scheme {
	case "unix":
		network, addr = "unix", u.Path
	case "tcp", "http":
		network, addr = "tcp", u.Host
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: scheme %q not supported (unix:// or tcp://)", host, u.Scheme)
	}
	c := &Client{host: host}
	c.dial = func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
	}
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	c.hc = &http.Client{Transport: tr}
	return c, nil
}

// Version is the API version in use.
func (c *Client) Version() string { return c.version }

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// versionLess compares "1.41" < "1.47".
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Filters select resources: {"label": ["k=v", ...], "status": [...]}.
type Filters map[string][]string

// Add appends a value to a filter and returns f.
func (f Filters) Add(key, value string) Filters {
	f[key] = append(f[key], value)
	return f
}

// LabelFilter selects by labels "k" or "k=v" (all must match).
func LabelFilter(kv ...string) Filters {
	f := Filters{}
	for _, s := range kv {
		f.Add("label", s)
	}
	return f
}

// encode is the engine's filter syntax, {"label":{"k=v":true}}, which every
// API version accepts.
func (f Filters) encode() string {
	m := map[string]map[string]bool{}
	for k, vs := range f {
		m[k] = map[string]bool{}
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// values is f as a query ("filters" when f is not empty).
func (f Filters) values() url.Values {
	q := url.Values{}
	if len(f) > 0 {
		q.Set("filters", f.encode())
	}
	return q
}

// create POSTs a spec and returns the new object's ID ("Id" or "ID").
func (c *Client) create(ctx context.Context, path string, q url.Values, spec any) (string, error) {
	var res struct{ ID string }
	err := c.call(ctx, request{method: "POST", path: path, query: q, json: spec}, &res)
	return res.ID, err
}

// stream sends a request whose answer is a progress stream (image import,
// build) and returns the first error the stream carries.
func (c *Client) stream(ctx context.Context, r request) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return jsonStream(resp.Body)
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	json         any // marshalled as the body when set
	header       http.Header
	versioned    bool
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	p := r.path
	if r.versioned {
		p = "/v" + c.version + p
	}
	u := "http://docker" + p
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	body := r.body
	if r.json != nil {
		b, err := json.Marshal(r.json)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.json != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends a request and returns the response when it is 2xx, else an *Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	r.versioned = true
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker engine at %s: %w", c.host, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, apiError(r.method+" "+r.path, resp)
	}
	return resp, nil
}

func apiError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxError))
	var m struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Message: msg, Op: op}
}

// call sends a request and decodes a JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxJSON))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSON)).Decode(out); err != nil {
		return fmt.Errorf("docker engine: %s %s: %w", r.method, r.path, err)
	}
	return nil
}

// Ping checks the engine answers and returns its API version.
func (c *Client) Ping(ctx context.Context) (string, error) {
	req, err := c.newRequest(ctx, request{method: "GET", path: "/_ping"})
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("docker engine at %s: %w", c.host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxError))
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Status: resp.StatusCode, Message: resp.Status, Op: "GET /_ping"}
	}
	return resp.Header.Get("Api-Version"), nil
}

// jsonStream reads a progress stream (image import, ...) to its end and
// returns the first error it carries.
func jsonStream(r io.Reader) error {
	dec := json.NewDecoder(io.LimitReader(r, maxJSON))
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
	}
}

// hijack sends a request that upgrades the connection to a raw stream (exec
// attach) and returns it; the caller closes it.
func (c *Client) hijack(ctx context.Context, r request) (*Hijacked, error) {
	r.versioned = true
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine at %s: %w", c.host, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, apiError(r.method+" "+r.path, resp)
	}
	return &Hijacked{Conn: conn, Reader: br}, nil
}

// Hijacked is an upgraded connection: write to Conn, read from Reader.
type Hijacked struct {
	Conn   net.Conn
	Reader *bufio.Reader
}

// CloseWrite ends the input (stdin) side.
func (h *Hijacked) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection.
func (h *Hijacked) Close() error { return h.Conn.Close() }
