// Command testsum reads `go test -json` on stdin and prints what a person
// wants from a CI log: one line per package, the output of every failing
// test, every skipped test with its reason, and the totals. It exits 1 when a
// test or a package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	out := map[string]*strings.Builder{} // package/test → output
	key := func(e event) string { return e.Package + " " + e.Test }
	var ran, passed, failed, skipped int
	var fails, skips []string
	pkgFailed := false
	start := time.Now()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil {
			fmt.Println(string(line)) // build errors and the like
			continue
		}
		switch e.Action {
		case "output":
			b := out[key(e)]
			if b == nil {
				b = &strings.Builder{}
				out[key(e)] = b
			}
			if b.Len() < 64<<10 {
				b.WriteString(e.Output)
			}
			if e.Test == "" && (strings.HasPrefix(e.Output, "ok ") || strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "?")) {
				fmt.Print(e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" {
					pkgFailed = true
					if b := out[key(e)]; b != nil && !strings.Contains(b.String(), "--- FAIL") {
						fmt.Print(b.String())
					}
				}
				continue
			}
			ran++
			name := e.Package + "." + e.Test
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				fails = append(fails, name)
				fmt.Printf("--- FAIL: %s (%.2fs)\n%s", name, e.Elapsed, out[key(e)])
			case "skip":
				skipped++
				reason := ""
				if b := out[key(e)]; b != nil {
					for _, l := range strings.Split(b.String(), "\n") {
						if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- SKIP") {
							reason = l
						}
					}
				}
				skips = append(skips, name+": "+reason)
			}
		}
	}
	sort.Strings(skips)
	if len(skips) > 0 {
		fmt.Printf("\nskipped (%d):\n  %s\n", len(skips), strings.Join(skips, "\n  "))
	}
	fmt.Printf("\ntests: %d ran, %d passed, %d failed, %d skipped (%s)\n", ran, passed, failed, skipped, time.Since(start).Round(time.Second))
	if failed > 0 || pkgFailed {
		if len(fails) > 0 {
			fmt.Printf("failed: %s\n", strings.Join(fails, ", "))
		}
		os.Exit(1)
	}
}
