//go:build unix

// Package mitkdctest starts MIT's KDC for one test (package mitkdc, kept
// apart so that the binaries using mitkdc do not link package testing).
package mitkdctest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/mitkdc"
	"github.com/doublehop/doublehop/internal/peer"
)

// ForTest starts a throw-away MIT realm for one test and stops it at cleanup.
// Without MIT's KDC and clients the test skips, or fails under CI (package peer).
func ForTest(t testing.TB, principals ...mitkdc.Principal) *mitkdc.KDC {
	t.Helper()
	peer.Need(t, mitkdc.Tools...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := mitkdc.Start(ctx, mitkdc.Options{Principals: principals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Stop() })
	return k
}

// Klist runs MIT klist with env, or with a private empty KRB5_CONFIG when env is nil.
func Klist(t testing.TB, env []string, args ...string) string {
	t.Helper()
	if env == nil {
		conf := filepath.Join(t.TempDir(), "krb5.conf")
		if err := os.WriteFile(conf, []byte("[libdefaults]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		env = []string{"KRB5_CONFIG=" + conf}
	}
	return peer.Run(t, env, "", "klist", args...)
}
