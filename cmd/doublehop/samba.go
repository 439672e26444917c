package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/doublehop/doublehop/conformance"
	"github.com/doublehop/doublehop/directory"
)

func init() {
	register("samba-krb5-tests", "run Samba's Kerberos test suite (written against Windows DCs) against the lab's DC", cmdSambaTests)
}

func cmdSambaTests(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("samba-krb5-tests", "samba-krb5-tests [--host IP] [--files a,b] [--strict] [--write FILE]", stderr)
	host := fs.String("host", "127.0.1.97", "the lab's own loopback address (the KDC listens on 88 and LDAP on 389 there)")
	files := fs.String("files", strings.Join(conformance.SambaFiles, ","), "the suite's files to run (samba.tests.krb5.<file>)")
	strict := fs.Bool("strict", false, "STRICT_CHECKING=1: the suite checks every field as against Windows")
	rc4 := fs.Bool("allow-rc4", true, "run with the domain policy allow_rc4=true (Windows' default; the lab's own default is AES only)")
	timeout := fs.Duration("timeout", 10*time.Minute, "per file")
	logDir := fs.String("logs", "", "keep each file's unittest output in DIR/FILE.log")
	keep := fs.Bool("keep", false, "keep the lab's state directory (directory, events, keytabs) and print where")
	tests := fs.String("k", "", "only the tests matching these patterns (unittest -k, comma-separated)")
	write := fs.String("write", "", "write the table to FILE (a markdown file, e.g. TESTING.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := conformance.Options{Host: *host, Files: strings.Split(*files, ","), Strict: *strict, Timeout: *timeout, Progress: stderr, LogDir: *logDir, Keep: *keep, Tests: *tests}
	if *rc4 {
		o.Policy = func(l *directory.Lab) { l.Policy.AllowRC4 = true }
	}
	start := time.Now()
	rs, err := conformance.RunSamba(ctx, o)
	if err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Fprintln(stdout, r.Line())
	}
	fmt.Fprintln(stdout, conformance.Total(rs).Line())
	if *write != "" {
		table := fmt.Sprintf("Run of %s (`doublehop samba-krb5-tests`, Debian's python3-samba 4.17, STRICT_CHECKING=%v, allow_rc4=%v, %s):\n\n%s",
			time.Now().UTC().Format("2006-01-02"), b2i(*strict), *rc4, time.Since(start).Round(time.Second), conformance.Markdown(rs))
		if err := writeSection(*write, "samba-krb5-tests", table); err != nil {
			return err
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeSection puts text between the file's <!-- name:begin --> and
// <!-- name:end --> markers, keeping the rest of the file; a file without
// them gets the section at its end.
func writeSection(path, name, text string) error {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := begin + "\n" + strings.TrimRight(text, "\n") + "\n" + end
	doc := string(old)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + section + doc[j+len(end):]
	case len(doc) == 0:
		doc = section + "\n"
	default:
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
