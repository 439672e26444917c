package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// Every single mistake an admin can make on the default lab that breaks
// Bob's flow is diagnosed, and the fixes explain prints restore it.
func TestExplainFixesSingleFaults(t *testing.T) {
	out := ProveExplain(context.Background(), SingleFaults(), ProofOptions{Parallel: 2, Rounds: 1})
	broke, fixed, unknown := ProofTable(os.Stdout, "single faults", out)
	if broke < 50 {
		t.Fatalf("only %d faults broke the flow: the generator proves little", broke)
	}
	if unknown > 0 || fixed != broke {
		t.Errorf("%d of %d broken flows fixed by explain's printed fixes, %d \"don't know\" (goal: all, none)", fixed, broke, unknown)
	}
}

// Two faults at once (a seeded sample): explain names one, its fix is
// applied, the flow runs again and explain names the next; at most one
// round per fault.
func TestExplainFixesFaultPairs(t *testing.T) {
	n, seed := 200, int64(1)
	if testing.Short() {
		n = 40
	}
	// make explain-proof: a bigger sample (DOUBLEHOP_PAIRS, DOUBLEHOP_SEED).
	if v, err := strconv.Atoi(os.Getenv("DOUBLEHOP_PAIRS")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.ParseInt(os.Getenv("DOUBLEHOP_SEED"), 10, 64); err == nil {
		seed = v
	}
	out := ProveExplain(context.Background(), FaultPairs(n, seed), ProofOptions{Parallel: 2, Rounds: 2})
	broke, fixed, _ := ProofTable(os.Stdout, "fault pairs", out)
	if broke > 0 && float64(fixed) < 0.95*float64(broke) {
		t.Errorf("%d of %d broken flows fixed (goal: 95%%)", fixed, broke)
	}
}
