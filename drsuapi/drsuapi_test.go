package drsuapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/dcerpc/ndr"
	"github.com/doublehop/doublehop/directory"
)

// The calls Samba's and impacket's DRSUAPI clients made against the lab
// (lab/drs_test.go), recorded as their stubs in testdata/fuzz/FuzzServeRPC
// (client-OPNUM-LEN), replayed here against the handler: the transcript
// of a real peer, with the DRS_HANDLE of this run in place of the
// recorded one.

type recorded struct {
	name  string
	opnum uint16
	stub  []byte
}

func recordings(t testing.TB) []recorded {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzServeRPC", "client-*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no recorded client calls: %v", err)
	}
	var rs []recorded
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		op, err1 := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(lines[1], "uint16("), ")"))
		stub, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
		if len(lines) != 3 || err1 != nil || err2 != nil {
			t.Fatalf("%s: not a corpus file", p)
		}
		rs = append(rs, recorded{name: filepath.Base(p), opnum: uint16(op), stub: []byte(stub)})
	}
	return rs
}

// bindStub is a recorded DsBind.
func bindStub(rs []recorded) []byte {
	for _, r := range rs {
		if r.opnum == opBind {
			return r.stub
		}
	}
	return nil
}

func testServer(t testing.TB) *Server {
	t.Helper()
	st, err := directory.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Directory: st})
}

// session binds as user and returns a function that makes further calls
// with the bind's handle in place.
func session(t testing.TB, s *Server, user string, bindStub []byte) func(op uint16, stub []byte) ([]byte, error) {
	t.Helper()
	a := dcerpc.NewAssociation(1)
	auth := &dcerpc.Auth{Type: dcerpc.AuthKerberos, Level: dcerpc.LevelPrivacy, User: user, Domain: "LAB.LOCAL",
		SessionKey: bytes.Repeat([]byte{0x5a}, 16)}
	call := func(op uint16, stub []byte) ([]byte, error) {
		return s.ServeRPC(context.Background(), &dcerpc.Call{Opnum: op, Stub: stub, Auth: auth, Assoc: a, Remote: "127.0.0.1:49152"})
	}
	out, err := call(opBind, bindStub)
	if err != nil || len(out) < 24 || binary.LittleEndian.Uint32(out[len(out)-4:]) != errSuccess {
		t.Fatalf("DsBind: %v %x", err, out)
	}
	h := out[len(out)-24 : len(out)-4]
	return func(op uint16, stub []byte) ([]byte, error) {
		stub = bytes.Clone(stub)
		if op != opBind && len(stub) >= 20 {
			copy(stub, h)
		}
		return call(op, stub)
	}
}

// werr is a reply's Win32 status (the last four bytes of every DRS reply).
func werr(out []byte) uint32 {
	if len(out) < 4 {
		return 0xffffffff
	}
	return binary.LittleEndian.Uint32(out[len(out)-4:])
}

func TestReplayClients(t *testing.T) {
	rs := recordings(t)
	bind := bindStub(rs)
	s := testServer(t)
	admin := session(t, s, "administrator", bind)
	bob := session(t, s, "bob", bind)
	for _, r := range rs {
		out, err := admin(r.opnum, r.stub)
		if err != nil || werr(out) != errSuccess {
			t.Errorf("%s as administrator: %v, WERR %d", r.name, err, werr(out))
		}
		if r.opnum == opGetNCChanges {
			// The reply carries bob's secrets, encrypted: nothing in clear.
			if bytes.Contains(out, []byte("Bob-Passw0rd!")) {
				t.Errorf("%s: the password in clear in the reply", r.name)
			}
			out, err = bob(r.opnum, r.stub)
			if err != nil || werr(out) != errDRAAccessDenied {
				t.Errorf("%s as bob: %v, WERR %d (want ERROR_DS_DRA_ACCESS_DENIED)", r.name, err, werr(out))
			}
		}
	}
	// A handle from no bind is a context mismatch; an unknown opnum is out of range.
	fresh := session(t, s, "administrator", bind)
	for _, r := range rs {
		if r.opnum == opCrackNames {
			stub := bytes.Clone(r.stub)
			copy(stub, make([]byte, 20))
			if _, err := s.ServeRPC(context.Background(), &dcerpc.Call{Opnum: r.opnum, Stub: stub, Auth: &dcerpc.Auth{User: "administrator"},
				Assoc: dcerpc.NewAssociation(2)}); !errors.Is(err, dcerpc.FaultContextMismatch) {
				t.Errorf("a handle from no bind: %v", err)
			}
		}
	}
	if _, err := fresh(99, nil); !errors.Is(err, dcerpc.FaultOpRangeError) {
		t.Errorf("opnum 99: %v", err)
	}
	// Anonymous calls are refused before any decoding.
	if _, err := s.ServeRPC(context.Background(), &dcerpc.Call{Opnum: opBind, Stub: bind, Assoc: dcerpc.NewAssociation(3)}); !errors.Is(err, dcerpc.FaultAccessDenied) {
		t.Errorf("anonymous DsBind: %v", err)
	}
}

// Every truncation of a recorded call is refused cleanly: a fault or a
// Win32 error, never a panic, never a success built from half a request.
func TestTruncatedCalls(t *testing.T) {
	rs := recordings(t)
	s := testServer(t)
	bind := bindStub(rs)
	call := session(t, s, "administrator", bind)
	for _, r := range rs {
		for n := 0; n < len(r.stub); n++ {
			out, err := call(r.opnum, r.stub[:n])
			if err == nil && werr(out) == errSuccess && r.opnum != opBind {
				t.Errorf("%s cut to %d bytes succeeded", r.name, n)
			}
		}
	}
}

func TestSecretEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	clear := []byte("0123456789abcdef")
	enc, err := encryptValue(key, clear)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, clear) {
		t.Fatal("the value is in clear")
	}
	got, err := decryptValue(key, enc)
	if err != nil || !bytes.Equal(got, clear) {
		t.Fatalf("round trip: %x %v", got, err)
	}
	// The checksum inside catches a changed byte and a wrong key.
	bad := bytes.Clone(enc)
	bad[len(bad)-1] ^= 1
	if _, err := decryptValue(key, bad); err == nil {
		t.Error("a changed byte decrypted")
	}
	if _, err := decryptValue(bytes.Repeat([]byte{8}, 16), enc); err == nil {
		t.Error("the wrong session key decrypted")
	}
	// The RID layer (MS-DRSR 4.1.10.5.11: DES with keys from the RID) is its own inverse's inverse.
	h := []byte("NT hash 16 bytes")
	if x := ridEncrypt(1105, h, false); bytes.Equal(x, h) || !bytes.Equal(ridEncrypt(1105, x, true), h) {
		t.Error("the RID layer does not round-trip")
	}
}

func TestSupplementalCredentials(t *testing.T) {
	keys := []KerberosKey{{EType: 18, Value: bytes.Repeat([]byte{1}, 32)}, {EType: 17, Value: bytes.Repeat([]byte{2}, 16)}}
	blob := SupplementalCredentials("LAB.LOCALbob", keys)
	pkgs, err := ParseSupplementalCredentials(blob)
	if err != nil {
		t.Fatal(err)
	}
	salt, got, err := ParseNewerKeys(pkgs["Primary:Kerberos-Newer-Keys"])
	if err != nil || salt != "LAB.LOCALbob" || len(got) != 2 || got[0].EType != 18 || !bytes.Equal(got[1].Value, keys[1].Value) {
		t.Fatalf("Kerberos-Newer-Keys: %q %+v %v", salt, got, err)
	}
	for n := 0; n < len(blob); n++ {
		ParseSupplementalCredentials(blob[:n]) // must not panic
	}
}

// FuzzServeRPC drives the handler with any opnum and stub after a real
// bind, as an administrator: every outcome is a reply or a Fault.
func FuzzServeRPC(f *testing.F) {
	rs := recordings(f)
	bind := bindStub(rs)
	s := testServer(f)
	f.Fuzz(func(t *testing.T, opnum uint16, stub []byte) {
		call := session(t, s, "administrator", bind)
		_, err := call(opnum, stub)
		var fault dcerpc.Fault
		if err != nil && !errors.As(err, &fault) {
			// Stub decoding errors become nca_s_fault_ndr in the server.
			if !ndr.Is(err) {
				t.Fatalf("opnum %d: %v is neither a fault nor a decoding error", opnum, err)
			}
		}
	})
}
