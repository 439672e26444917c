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
//
// Memory is bounded twice: by time, because entries live in one bucket per
// second of expiry and a whole bucket is dropped (its memory returned) the
// second it expires, so the cache holds rate × skew entries and no more; and
// by count (max), beyond which it refuses rather than forgets.
type ReplayCache struct {
	mu      sync.Mutex
	skew    time.Duration
	max     int
	n       int
	buckets map[int64]map[replayKey]struct{} // expiry second → entries
	oldest  int64                            // no bucket below this second
}

// The key never uses the ticket's clear-text sname: it is not authenticated,
// and rewriting it must not make a replay look new.
type replayKey struct {
	client string
	digest [sha256.Size]byte
}

// DefaultReplayMax bounds a cache by count: a million authenticators (about
// 130 MB), 3 300 a second for five minutes.
const DefaultReplayMax = 1 << 20

// NewReplayCache makes a cache for the given skew holding at most max
// entries (DefaultReplayMax when max <= 0).
func NewReplayCache(skew time.Duration, max int) *ReplayCache {
	if max <= 0 {
		max = DefaultReplayMax
	}
	return &ReplayCache{skew: skew, max: max, buckets: map[int64]map[replayKey]struct{}{}}
}

// Seen records the authenticator and reports whether it had been seen before.
// When the cache is full of live entries, Seen reports true: refusing is safer
// than forgetting (MIT behaves the same way when its rcache cannot store).
func (r *ReplayCache) Seen(client string, ctime time.Time, authCipher []byte, now time.Time) bool {
	k := replayKey{client, sha256.Sum256(authCipher)}
	// A replay carries the same authenticator, so the same ctime: it lands in
	// the same bucket as the original.
	exp := ctime.Add(r.skew + time.Second).Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now.Unix())
	b := r.buckets[exp]
	if _, ok := b[k]; ok {
		return true
	}
	if exp < now.Unix() {
		return false // already outside the window: the skew check refuses it
	}
	if r.n >= r.max {
		return true
	}
	if b == nil {
		b = map[replayKey]struct{}{}
		r.buckets[exp] = b
	}
	b[k] = struct{}{}
	r.n++
	return false
}

// expire drops the buckets whose second has passed.
func (r *ReplayCache) expire(now int64) {
	if now <= r.oldest {
		return
	}
	for sec, b := range r.buckets {
		if sec < now {
			r.n -= len(b)
			delete(r.buckets, sec)
		}
	}
	r.oldest = now
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
	return r.n
}
