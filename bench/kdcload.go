// Package bench measures the lab: a KDC load generator that drives our KDC and
// MIT's krb5kdc with the same requests (keys derived once), the full
// Bob → web → SQL flow, and start-up time. `doublehop bench` and `make bench`
// print its tables; it never runs inside `make test`.
package bench

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doublehop/doublehop/krb"
	"github.com/jcmturner/gokrb5/v8/types"
)

// User is a load-test principal with its long-term key, derived once.
type User struct {
	Name string
	Key  types.EncryptionKey
}

// NewUsers derives keys for name1..nameN with the realm+name salt that both AD
// (users) and MIT (default salt) use.
func NewUsers(realm, prefix, password string, n int) ([]User, error) {
	var out []User
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		k, err := krb.StringToKey(password, realm+name, krb.ETypeAES256SHA1)
		if err != nil {
			return nil, err
		}
		out = append(out, User{Name: name, Key: k})
	}
	return out, nil
}

// Result is one load run.
type Result struct {
	Ops      int
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// Rate is operations per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops-r.Errors) / r.Elapsed.Seconds()
}

// Run calls op ops times from conc workers (bounded by max duration) and
// measures latency.
func Run(ctx context.Context, conc, ops int, max time.Duration, op func(ctx context.Context, worker, i int) error) Result {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var mu sync.Mutex
	res := Result{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > ops {
					return
				}
				t0 := time.Now()
				err := op(ctx, w, i)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					mu.Lock()
					res.Errors++
					if res.FirstErr == nil {
						res.FirstErr = err
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res.Ops = len(all)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if n := len(all); n > 0 {
		res.P50, res.P99 = all[n/2], all[min(n-1, n*99/100)]
	}
	return res
}

// KDCTarget sends requests to one KDC.
type KDCTarget struct {
	Addr  string
	Realm string
	UDP   bool
}

// exchange sends one request and returns the reply.
func (t KDCTarget) exchange(ctx context.Context, req []byte) ([]byte, error) {
	if !t.UDP {
		rep, err := krb.SendTCP(ctx, nil, t.Addr, req)
		if err != nil {
			if _, ok := krb.CodeOf(err); ok {
				return rep, err
			}
			return nil, err
		}
		return rep, nil
	}
	c, err := net.Dial("udp", t.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, krb.MaxMessage)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	rep := buf[:n]
	if e := krb.AsKRBError(rep); e != nil {
		if e.Code == krb.KRB_ERR_RESPONSE_TOO_BIG {
			return krb.SendTCP(ctx, nil, t.Addr, req)
		}
		return rep, e
	}
	return rep, nil
}

// AS sends one AS-REQ with PA-ENC-TIMESTAMP (aes256) and checks the reply
// decrypts: the "AS-REQ with pre-auth" of the benchmark.
func (t KDCTarget) AS(ctx context.Context, u User) (*krb.KDCReply, error) {
	pa, err := krb.NewPAEncTimestamp(u.Key, 0, time.Now())
	if err != nil {
		return nil, err
	}
	req := krb.ASRequest{Realm: t.Realm, Client: types.PrincipalName{NameType: krb.NTPrincipal, NameString: []string{u.Name}},
		Options: []int{krb.FlagForwardable}, ETypes: []int32{krb.ETypeAES256SHA1}, PAData: []types.PAData{pa}}
	b, nonce, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := t.exchange(ctx, b)
	if err != nil {
		return nil, err
	}
	return krb.DecodeKDCRep(rep, u.Key, krb.UsageASRepEncPart, nonce)
}

// TGS sends one TGS-REQ with a TGT and checks the reply decrypts.
func (t KDCTarget) TGS(ctx context.Context, tgt krb.Credential, spn string) (*krb.KDCReply, error) {
	r := krb.TGSRequest{Realm: t.Realm, Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
		Service: krb.ParsePrincipalName(spn), Options: []int{krb.FlagForwardable}}
	b, nonce, key, usage, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := t.exchange(ctx, b)
	if err != nil {
		return nil, err
	}
	return krb.DecodeKDCRep(rep, key, usage, nonce)
}

// LoadAS measures AS-REQs spread over the users.
func LoadAS(ctx context.Context, t KDCTarget, users []User, conc, ops int, max time.Duration) Result {
	return Run(ctx, conc, ops, max, func(ctx context.Context, w, i int) error {
		_, err := t.AS(ctx, users[i%len(users)])
		return err
	})
}

// LoadTGS measures TGS-REQs, alternating two SPNs; each worker logs on once.
func LoadTGS(ctx context.Context, t KDCTarget, users []User, spns []string, conc, ops int, max time.Duration) (Result, error) {
	tgts := make([]krb.Credential, conc)
	for w := range tgts {
		rep, err := t.AS(ctx, users[w%len(users)])
		if err != nil {
			return Result{}, fmt.Errorf("TGT for %s: %w", users[w%len(users)].Name, err)
		}
		tgts[w] = rep.Credential()
	}
	return Run(ctx, conc, ops, max, func(ctx context.Context, w, i int) error {
		_, err := t.TGS(ctx, tgts[w], spns[i%len(spns)])
		return err
	}), nil
}
