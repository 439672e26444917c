// Package peer finds the third-party programs the tests use as peers (MIT
// krb5, curl, FreeTDS, tshark, browsers, impacket, Samba) and decides what a
// test does when one is missing: outside CI it skips and names the Debian
// package to install; under CI (CI=true, or DOUBLEHOP_REQUIRE_PEERS=1, both
// set by .ci/run) it fails, because a skipped proof is no proof.
package peer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Packages maps each peer program to the Debian 12 package that ships it.
// .ci/run and `make deps` install every package named here.
var Packages = map[string]string{
	"kinit":            "krb5-user",
	"klist":            "krb5-user",
	"kvno":             "krb5-user",
	"kdestroy":         "krb5-user",
	"krb5kdc":          "krb5-kdc",
	"kdb5_util":        "krb5-kdc",
	"kadmin.local":     "krb5-admin-server",
	"curl":             "curl",
	"tsql":             "freetds-bin",
	"tshark":           "tshark",
	"ldapsearch":       "ldap-utils",
	"ldapmodify":       "ldap-utils",
	"chromium":         "chromium",
	"firefox-esr":      "firefox-esr",
	"Xvfb":             "xvfb",
	"samba":            "samba",
	"samba-tool":       "samba",
	"/usr/bin/python3": "python3",
}

// TB is the part of testing.TB the helpers use (so that this package, which
// bench and mitkdc also use, does not link package testing into the binary).
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Required reports whether a missing peer must fail the test (CI) rather
// than skip it.
func Required() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || os.Getenv("DOUBLEHOP_REQUIRE_PEERS") == "1"
}

// Look finds a program on PATH or in the sbin directories where Debian puts
// the admin tools (kadmin.local, krb5kdc).
func Look(name string) (string, error) {
	if filepath.IsAbs(name) {
		if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return name, nil
		}
		return "", fmt.Errorf("%s not found (%s)", name, Install(name))
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (%s)", name, Install(name))
}

// Install is the command that provides the program.
func Install(names ...string) string {
	set := map[string]bool{}
	for _, n := range names {
		if p, ok := Packages[n]; ok {
			set[p] = true
		} else {
			set[n] = true
		}
	}
	var pkgs []string
	for p := range set {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	return "apt-get install " + strings.Join(pkgs, " ")
}

// Need returns the path of each program, or ends the test: Skip outside CI,
// Fatal under CI, naming what to install.
func Need(t TB, names ...string) []string {
	t.Helper()
	var paths, missing []string
	for _, n := range names {
		p, err := Look(n)
		if err != nil {
			missing = append(missing, n)
			continue
		}
		paths = append(paths, p)
	}
	if len(missing) > 0 {
		Missing(t, fmt.Sprintf("%s not installed (%s)", strings.Join(missing, ", "), Install(missing...)))
	}
	return paths
}

// Need1 is Need for one program.
func Need1(t TB, name string) string {
	t.Helper()
	return Need(t, name)[0]
}

// Missing ends a test whose peer is unavailable for a reason found by the
// caller (a Python module that does not import, a browser that cannot start).
func Missing(t TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("peer missing under CI: %s", why)
	}
	t.Skipf("peer missing: %s", why)
}

// Run runs a peer program with a minimal environment plus env, feeding stdin,
// and fails the test when it exits non-zero.
func Run(t TB, env []string, stdin, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(env, stdin, Need1(t, name), args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// RunErr runs a program and returns its combined output and error.
func RunErr(env []string, stdin, path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TZ=UTC", "LC_ALL=C"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Python returns Debian's python3 once the module imports there (impacket,
// samba), or ends the test naming the package that provides it.
func Python(t TB, module, pkg string) string {
	t.Helper()
	py := Need1(t, "/usr/bin/python3")
	if out, err := RunErr(nil, "", py, "-c", "import "+module); err != nil {
		Missing(t, fmt.Sprintf("python module %s (apt-get install %s): %s", module, pkg, strings.TrimSpace(out)))
	}
	return py
}
