package gss

import (
	"crypto/sha256"
	"sync"
	"time"
)

// ReplayCache remembers authenticators for the clock-skew window (RFC 4120
// §3.2.3, §10). Unlike gokrb5's process-global cache it is per acceptor, checks
// and inserts under one lock, and expires entries at ctime+skew rather than
// skew after first sight. Like MIT's rcache (krb5 1.18+) it keys on a hash of
// the authenticator ciphertext, so two clients that happen to share a
// microsecond are not taken for a replay.
type ReplayCache struct {
	mu      sync.Mutex
	skew    time.Duration
	entries map[replayKey]time.Time
	max     int
	lastGC  time.Time
}

// The key never uses the ticket's clear-text sname: it is not authenticated,
// and rewriting it must not make a replay look new.
type replayKey struct {
	client string
	digest [sha256.Size]byte
}

// NewReplayCache makes a cache for the given skew holding at most max entries.
func NewReplayCache(skew time.Duration, max int) *ReplayCache {
	if max <= 0 {
		max = 1 << 20
	}
	return &ReplayCache{skew: skew, entries: make(map[replayKey]time.Time), max: max}
}

// Seen records the authenticator and reports whether it had been seen before.
// When the cache is full of live entries, Seen reports true: refusing is safer
// than forgetting (MIT behaves the same way when its rcache cannot store).
func (r *ReplayCache) Seen(client string, ctime time.Time, authCipher []byte, now time.Time) bool {
	k := replayKey{client, sha256.Sum256(authCipher)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if exp, ok := r.entries[k]; ok && now.Before(exp) {
		return true
	}
	if len(r.entries) >= r.max || now.Sub(r.lastGC) > r.skew {
		for key, exp := range r.entries {
			if !now.Before(exp) {
				delete(r.entries, key)
			}
		}
		r.lastGC = now
		if len(r.entries) >= r.max {
			return true
		}
	}
	r.entries[k] = ctime.Add(r.skew + time.Second)
	return false
}

// SetSkew changes the retention window (the domain's skew policy changed);
// entries already stored keep their expiry.
func (r *ReplayCache) SetSkew(d time.Duration) {
	r.mu.Lock()
	r.skew = d
	r.mu.Unlock()
}

// Len reports the number of remembered authenticators.
func (r *ReplayCache) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}
