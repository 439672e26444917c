// Package labtest hands a Go test suite a running doublehop lab in
// containers, the way testcontainers-go modules hand it a database: Run
// starts one, Terminate removes it, Start does both for one test.
//
//	func TestMyKerberizedService(t *testing.T) {
//		lab := labtest.Start(t, labtest.WithScenario("no-delegation"))
//		flow, err := lab.Flow(ctx, "bob") // kinit + Bob's page from ws01
//		...
//	}
//
// The lab is package dockerlab's: dc, web, sql and ws01 on a private network
// with their real host names, each tier holding only its own keytab, the
// host-side krb5.conf and lab.env in Lab.StateDir, events, admin commands and
// the scenario engine. labtest adds what a test suite wants on top: the
// tiers started by testcontainers-go (its wait strategies, its log, and any
// customizer of the suite's own with WithCustomizers; Ryuk stays off, the
// lab is removed by label), a fresh name and random ports per lab, the owner
// label "labtest" (so Sweep can remove what a killed run left), cleanup
// through testing.TB, and the rule of the project's CI: without a Docker
// engine the test skips, under CI (CI=true) it fails.
package labtest

import (
	"context"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/internal/peer"
)

// Lab is a running container lab.
type Lab = dockerlab.Lab

// Option configures Run.
type Option = dockerlab.Option

// FlowResult is what Bob's flow from ws01 showed.
type FlowResult = dockerlab.FlowResult

// Options, as dockerlab has them.
var (
	WithScenario = dockerlab.WithScenario // start from a catalog scenario's setup
	WithLab      = dockerlab.WithLab      // start from this directory
	WithLabFile  = dockerlab.WithLabFile  // start from this lab file
	WithFlow     = dockerlab.WithFlow     // run the user's flow once before returning
	WithProgress = dockerlab.WithProgress // write progress lines
	WithImage    = dockerlab.WithImage    // use this image reference
	WithBinary   = dockerlab.WithBinary   // build the image from this static binary
)

// Run starts a lab for a test suite; the caller terminates it. On error the
// partial lab is returned too, so Terminate can remove it.
func Run(ctx context.Context, opts ...Option) (*Lab, error) {
	return dockerlab.Run(ctx, append([]Option{dockerlab.WithOwner("labtest"), dockerlab.WithStarter(starter(nil))}, opts...)...)
}

// Available reports why no Docker engine can be used, or nil.
func Available(ctx context.Context) error { return dockerlab.Available(ctx) }

// Start runs a lab for one test and removes it when the test ends. Without a
// Docker engine the test skips, or fails under CI.
func Start(t testing.TB, opts ...Option) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Available(ctx); err != nil {
		peer.Missing(t, "no Docker engine reachable: "+err.Error())
	}
	lab, err := Run(ctx, opts...)
	dockerlab.Cleanup(t, lab)
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	return lab
}

// Default is the default lab's directory, to change before WithLab.
func Default() *directory.Lab { return directory.Default() }
