// Package conformance runs test suites that others wrote against Windows
// domain controllers, against the lab's DC: Samba's Kerberos tests
// (python/samba/tests/krb5, shipped by Debian's python3-samba).
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/lab"
)

// SambaFiles are the suite's files the issue names, in the order it gives.
var SambaFiles = []string{
	"kdc_tests", "as_req_tests", "kdc_tgs_tests", "s4u_tests", "protected_users_tests", "lockout_tests", "fast_tests",
	"salt_tests", "etype_tests", "kpasswd_tests", "ms_kile_client_principal_lookup_tests", "alias_tests", "compatability_tests",
}

// SambaDir is where Debian's python3-samba puts the suite.
const SambaDir = "/usr/lib/python3/dist-packages/samba/tests/krb5"

// SambaPackages are the Debian packages the suite needs: the tests, Samba's
// own LDAP client for ldb (ildap), and the tests' ASN.1 and crypto modules.
var SambaPackages = []string{"python3-samba", "samba-dsdb-modules", "python3-pyasn1", "python3-cryptography"}

// Missing lists what is not installed (as files the packages provide).
func Missing() []string {
	var out []string
	for pkg, f := range map[string]string{
		"python3-samba":        filepath.Join(SambaDir, "kdc_base_test.py"),
		"samba-dsdb-modules":   "/usr/lib/x86_64-linux-gnu/samba/ldb/ildap.so",
		"python3-pyasn1":       "/usr/lib/python3/dist-packages/pyasn1/__init__.py",
		"python3-cryptography": "/usr/lib/python3/dist-packages/cryptography/__init__.py",
	} {
		if _, err := os.Stat(f); err != nil {
			out = append(out, pkg)
		}
	}
	sort.Strings(out)
	return out
}

// Options configure a run.
type Options struct {
	Host     string        // the lab's own loopback address (KDC on 88, LDAP on 389), default 127.0.1.97
	Files    []string      // default SambaFiles
	Strict   bool          // STRICT_CHECKING=1
	Timeout  time.Duration // per file, default 10 minutes
	Policy   func(*directory.Lab)
	Progress io.Writer
	LogDir   string // keep each file's unittest output here (FILE.log)
	Keep     bool   // keep the lab's state directory (the directory, events, keytabs) and say where
	Tests    string // only these tests (unittest -k patterns, comma-separated)
}

// Result is one file's outcome.
type Result struct {
	File                                string
	Passed, Failed, Errors, Skipped, XF int
	Took                                time.Duration
	Causes                              map[string]int // the first assertion or error line of each failure, counted
}

// Total is the sum over files.
func Total(rs []Result) Result {
	t := Result{File: "total", Causes: map[string]int{}}
	for _, r := range rs {
		t.Passed += r.Passed
		t.Failed += r.Failed
		t.Errors += r.Errors
		t.Skipped += r.Skipped
		t.XF += r.XF
		t.Took += r.Took
		for k, v := range r.Causes {
			t.Causes[k] += v
		}
	}
	return t
}

// Ran is how many tests the file ran.
func (r Result) Ran() int { return r.Passed + r.Failed + r.Errors + r.Skipped + r.XF }

// RunSamba starts an embedded lab the way the suite expects a DC (KDC on 88
// and LDAP on 389 of its own address), gives the suite its environment and
// runs each file with Debian's python3.
func RunSamba(ctx context.Context, o Options) ([]Result, error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("samba's krb5 tests need: apt-get install %s", strings.Join(m, " "))
	}
	if o.Host == "" {
		o.Host = "127.0.1.97"
	}
	if len(o.Files) == 0 {
		o.Files = SambaFiles
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "doublehop-samba-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		fmt.Fprintf(o.Progress, "samba krb5: the lab's state stays in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	seed := directory.Default()
	// The KDC offers FAST, as a DC with "KDC support for claims, compound
	// authentication and Kerberos armoring" set; the suite is told so.
	seed.Policy.KerberosArmoring = "supported"
	if o.Policy != nil {
		o.Policy(seed)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := lab.Start(lctx, lab.Options{StateDir: filepath.Join(dir, "lab"), Lab: seed, Reset: true, Host: o.Host, KDCPort: 88, LDAPPort: 389, LDAPSPort: 636, RPCPort: 135})
	if err != nil {
		return nil, fmt.Errorf("a lab on %s with the KDC on 88 and LDAP on 389: %w", o.Host, err)
	}
	defer l.Close()
	env, err := sambaEnv(l, dir, o)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, f := range o.Files {
		fmt.Fprintf(o.Progress, "samba krb5: %s ...\n", f)
		r, log := runFile(ctx, env, f, o.Tests, o.Timeout)
		if o.LogDir != "" {
			os.MkdirAll(o.LogDir, 0o755)
			os.WriteFile(filepath.Join(o.LogDir, f+".log"), log, 0o644)
		}
		fmt.Fprintf(o.Progress, "  %s\n", r.Line())
		out = append(out, r)
	}
	if o.LogDir != "" {
		// The DC's side of the run: every 4768/4769/4771, LDAP and RPC logon.
		if b, err := os.ReadFile(filepath.Join(l.StateDir, lab.EventsDir, "kdc.jsonl")); err == nil {
			os.WriteFile(filepath.Join(o.LogDir, "dc-events.jsonl"), b, 0o644)
		}
	}
	return out, nil
}

// sambaEnv is the suite's environment for the lab (samba.tests.krb5's
// variables: the DC, the realm, the accounts it uses as they are).
func sambaEnv(l *lab.Lab, dir string, o Options) ([]string, error) {
	v := l.Store.View()
	host := strings.Split(l.KDCAddr, ":")[0]
	for _, d := range []string{"private", "lock", "state", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`[global]
	workgroup = %s
	realm = %s
	netbios name = WS01
	server role = standalone server
	private dir = %[3]s/private
	lock dir = %[3]s/lock
	state directory = %[3]s/state
	cache directory = %[3]s/cache
	client ldap sasl wrapping = seal
`, v.Lab.NetBIOS, v.Lab.Realm, dir)
	smb := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(smb, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	pw := func(a string) string { return l.Password(a) }
	strict := "0"
	if o.Strict {
		strict = "1"
	}
	env := append(os.Environ(),
		"SERVER="+host, "DC_SERVER="+host, "REALM="+v.Lab.Realm, "DOMAIN="+v.Lab.NetBIOS,
		"USERNAME=bob", "PASSWORD="+pw("bob"), "CLIENT_USERNAME=bob", "CLIENT_PASSWORD="+pw("bob"),
		"ADMIN_USERNAME=administrator", "ADMIN_PASSWORD="+pw("administrator"),
		"DC_USERNAME=DC$", "DC_PASSWORD="+pw("DC$"), "FOR_USER=alice",
		fmt.Sprintf("DC_KVNO=%d", kvno(v, "DC$")),
		fmt.Sprintf("KVNO=%d", kvno(v, "bob")), fmt.Sprintf("CLIENT_KVNO=%d", kvno(v, "bob")),
		fmt.Sprintf("ADMIN_KVNO=%d", kvno(v, "administrator")),
		// What this KDC does, as Samba's selftest declares it per DC: the
		// PAC's ticket signature (MS-PAC 2.8.3, Windows since 2020) yes;
		// FAST (kerberos_armoring=supported) yes; the extended KDC ("full")
		// signature, claims and compound identity no.
		"TKT_SIG_SUPPORT=1", "FULL_SIG_SUPPORT=0", "FAST_SUPPORT=1", "CLAIMS_SUPPORT=0", "COMPOUND_ID_SUPPORT=0",
		"STRICT_CHECKING="+strict, "SMB_CONF_PATH="+smb, "KRB5_CONFIG="+l.Krb5Conf(),
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"), "PYTHONPATH=/usr/lib/python3/dist-packages")
	// The machine accounts' keys too: the suite would derive them with a
	// user's salt (REALM+name$), where AD salts computers with
	// REALM+host+name.realm (MS-KILE 3.1.1.2).
	for prefix, acct := range map[string]string{"DC": "DC$"} {
		e, ok := v.Account(acct)
		if !ok {
			continue
		}
		for et, name := range map[int32]string{kcrypto.ETypeAES256SHA1: "AES256", kcrypto.ETypeAES128SHA1: "AES128", kcrypto.ETypeRC4HMAC: "RC4"} {
			if key, ok := e.Key(et); ok {
				env = append(env, prefix+"_"+name+"_KEY_HEX="+hex.EncodeToString(key.KeyValue))
			}
		}
	}
	// The krbtgt's keys, as Samba's selftest gives them (the suite reads
	// tickets' PACs with them).
	if k := v.Krbtgt(); k != nil {
		env = append(env, "KRBTGT_USERNAME="+k.Name, fmt.Sprintf("KRBTGT_KVNO=%d", k.KVNO), "KRBTGT_PASSWORD="+k.Password)
		if key, ok := k.Key(kcrypto.ETypeAES256SHA1); ok {
			env = append(env, "KRBTGT_AES256_KEY_HEX="+hex.EncodeToString(key.KeyValue))
		}
		if key, ok := k.Key(kcrypto.ETypeAES128SHA1); ok {
			env = append(env, "KRBTGT_AES128_KEY_HEX="+hex.EncodeToString(key.KeyValue))
		}
		if key, ok := k.Key(kcrypto.ETypeRC4HMAC); ok {
			env = append(env, "KRBTGT_RC4_KEY_HEX="+hex.EncodeToString(key.KeyValue))
		}
	}
	return env, nil
}

func runFile(ctx context.Context, env []string, file, tests string, timeout time.Duration) (Result, []byte) {
	r := Result{File: file, Causes: map[string]int{}}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-m", "unittest", "-v"}
	for _, k := range strings.Split(tests, ",") {
		if k != "" {
			args = append(args, "-k", k)
		}
	}
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append(args, "samba.tests.krb5."+file)...)
	cmd.Env = env
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = 5 * time.Second // a timed-out file's children may hold the pipe
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Run()
	r.Took = time.Since(start)
	parse(&r, buf.String())
	if r.Ran() == 0 {
		r.Errors = 1
		tail := buf.String()
		if len(tail) > 400 {
			tail = tail[len(tail)-400:]
		}
		r.Causes["the file did not run: "+firstLine(strings.TrimSpace(tail))]++
	}
	return r, buf.Bytes()
}

func kvno(v *directory.View, account string) int {
	if e, ok := v.Account(account); ok {
		return e.KVNO
	}
	return 1
}

// unittest's summary: "Ran 216 tests in 0.5s" and "FAILED (failures=32,
// errors=3, skipped=1)" or "OK (skipped=2)".
var (
	ranLine   = regexp.MustCompile(`^Ran (\d+) tests? in`)
	countPart = regexp.MustCompile(`(failures|errors|skipped|expected failures|unexpected successes)=(\d+)`)
)

// parse reads the summary and the first error line of each failure. A
// test counts once: failed when any of its subtests failed (unittest counts
// every failing subtest), else errored when any raised.
func parse(r *Result, out string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	inTrace, ran := false, 0
	failed, errored := map[string]bool{}, map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		if m := ranLine.FindStringSubmatch(line); m != nil {
			fmt.Sscan(m[1], &ran)
			continue
		}
		if strings.HasPrefix(line, "FAILED (") || strings.HasPrefix(line, "OK (") || line == "OK" {
			for _, m := range countPart.FindAllStringSubmatch(line, -1) {
				var n int
				fmt.Sscan(m[2], &n)
				switch m[1] {
				case "skipped":
					r.Skipped = n
				case "expected failures":
					r.XF = n
				}
			}
			continue
		}
		switch {
		case strings.HasPrefix(line, "FAIL: "):
			failed[strings.Fields(line)[1]] = true
			inTrace = true
		case strings.HasPrefix(line, "ERROR: "):
			if f := strings.Fields(line); len(f) > 1 {
				errored[f[1]] = true
			}
			inTrace = true
		case inTrace && isCause(line):
			r.Causes[cause(line)]++
			inTrace = false
		}
	}
	for t := range errored {
		if failed[t] {
			delete(errored, t)
		}
	}
	r.Failed, r.Errors = len(failed), len(errored)
	r.Passed = ran - r.Failed - r.Errors - r.Skipped - r.XF
	if r.Passed < 0 {
		r.Passed = 0
	}
}

func isCause(line string) bool {
	if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "Traceback") || strings.HasPrefix(line, "During handling") {
		return false
	}
	i := strings.Index(line, ":")
	return i > 0 && (strings.HasSuffix(line[:i], "Error") || strings.HasSuffix(line[:i], "Exception"))
}

// cause shortens a cause line: numbers and hex runs go, so alike failures count together.
var noisy = regexp.MustCompile(`0x[0-9a-fA-F]+|\b[0-9a-f]{16,}\b|b'[^']*'|<[^>]*>`)

func cause(line string) string {
	s := noisy.ReplaceAllString(line, "…")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Line is one row of the summary.
func (r Result) Line() string {
	return fmt.Sprintf("%-40s %4d passed, %4d failed, %4d errors, %3d skipped (%d ran, %s)", r.File, r.Passed, r.Failed, r.Errors, r.Skipped, r.Ran(), r.Took.Round(time.Second))
}

// Markdown renders the results as the table TESTING.md keeps.
func Markdown(rs []Result) string {
	var b strings.Builder
	b.WriteString("| file | ran | passed | failed | errors | skipped | pass rate |\n|---|---|---|---|---|---|---|\n")
	for _, r := range append(rs, Total(rs)) {
		rate := 0.0
		if r.Ran() > 0 {
			rate = 100 * float64(r.Passed+r.XF) / float64(r.Ran())
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %.0f %% |\n", r.File, r.Ran(), r.Passed, r.Failed, r.Errors, r.Skipped, rate)
	}
	t := Total(rs)
	type kv struct {
		k string
		n int
	}
	var cs []kv
	for k, n := range t.Causes {
		cs = append(cs, kv{k, n})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].n > cs[j].n || cs[i].n == cs[j].n && cs[i].k < cs[j].k })
	b.WriteString("\nFailures by first error line (all files):\n\n| count | cause |\n|---|---|\n")
	for i, c := range cs {
		if i == 25 {
			break
		}
		fmt.Fprintf(&b, "| %d | `%s` |\n", c.n, strings.ReplaceAll(c.k, "|", "\\|"))
	}
	return b.String()
}
