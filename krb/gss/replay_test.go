package gss

import (
	"fmt"
	"testing"
	"time"
)

// The cache holds rate × skew entries and no more: under a steady stream of
// new authenticators, entries whose window passed are gone, and a replay
// inside the window is still caught.
func TestReplayCacheBoundedByTime(t *testing.T) {
	skew := 5 * time.Minute
	r := NewReplayCache(skew, 0)
	start := time.Unix(1_800_000_000, 0)
	const perSecond = 50
	for s := 0; s < 900; s++ { // 15 minutes
		now := start.Add(time.Duration(s) * time.Second)
		for i := 0; i < perSecond; i++ {
			if r.Seen("bob@LAB.LOCAL", now, []byte(fmt.Sprintf("%d/%d", s, i)), now) {
				t.Fatalf("a new authenticator at %ds taken for a replay", s)
			}
		}
		if s == 600 && !r.Seen("bob@LAB.LOCAL", now.Add(-time.Minute), []byte("540/0"), now) {
			t.Fatal("a replay one minute later was not caught")
		}
	}
	if max := perSecond * int((skew+time.Second)/time.Second+1); r.Len() > max {
		t.Fatalf("%d entries after 15 minutes, want at most %d (rate × window)", r.Len(), max)
	}
	if len(r.buckets) > 302 {
		t.Fatalf("%d buckets kept", len(r.buckets))
	}
}

// Full of live entries, the cache refuses instead of forgetting.
func TestReplayCacheBoundedByCount(t *testing.T) {
	r := NewReplayCache(time.Minute, 100)
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 100; i++ {
		if r.Seen("bob", now, []byte{byte(i)}, now) {
			t.Fatalf("entry %d refused early", i)
		}
	}
	if !r.Seen("bob", now, []byte("one more"), now) {
		t.Fatal("a full cache accepted a new authenticator")
	}
	later := now.Add(2 * time.Minute)
	if r.Seen("bob", later, []byte("after expiry"), later) || r.Len() != 1 {
		t.Fatalf("after the window: len %d", r.Len())
	}
}
