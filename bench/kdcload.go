// Package bench measures the lab: a KDC load generator that drives our KDC and
// MIT's krb5kdc with the same requests (keys derived once), the full
// Bob → web → SQL flow, and start-up time. `doublehop bench` and `make bench`
// print its tables; it never runs inside `make test`.
package bench

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
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
		k, err := kcrypto.StringToKey(password, realm+name, kcrypto.ETypeAES256SHA1)
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
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			defer func() { t.merge(lat) }()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > ops {
					return
				}
				t0 := time.Now()
				err := op(ctx, w, i)
				lat = append(lat, time.Since(t0))
				t.fail(err)
			}
		}(w)
	}
	wg.Wait()
	return t.result(time.Since(start))
}

// RunRate calls op at a fixed total rate (open loop, spread over conc
// workers) for dur and measures latency: comparing tails at the same offered
// load, below both servers' capacity, instead of at each one's saturation.
func RunRate(ctx context.Context, conc int, rate float64, dur time.Duration, op func(ctx context.Context, worker, i int) error) Result {
	interval := time.Duration(float64(conc) / rate * float64(time.Second))
	n := int(rate * dur.Seconds() / float64(conc))
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			offset := interval * time.Duration(w) / time.Duration(conc)
			var lat []time.Duration
			for k := 0; k < n && ctx.Err() == nil; k++ {
				if d := time.Until(start.Add(offset + time.Duration(k)*interval)); d > 0 {
					time.Sleep(d)
				}
				t0 := time.Now()
				err := op(ctx, w, k)
				lat = append(lat, time.Since(t0))
				t.fail(err)
			}
			t.merge(lat)
		}(w)
	}
	wg.Wait()
	return t.result(time.Since(start))
}

// tally gathers the workers' latencies and errors into one Result.
type tally struct {
	mu  sync.Mutex
	res Result
	all []time.Duration
}

func (t *tally) fail(err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.Errors++
	if t.res.FirstErr == nil {
		t.res.FirstErr = err
	}
}

func (t *tally) merge(lat []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.all = append(t.all, lat...)
}

func (t *tally) result(elapsed time.Duration) Result {
	r, all := t.res, t.all
	r.Elapsed, r.Ops = elapsed, len(all)
	slices.Sort(all)
	if n := len(all); n > 0 {
		r.P50, r.P99 = all[n/2], all[min(n-1, n*99/100)]
	}
	return r
}

// KDCTarget sends requests to one KDC.
type KDCTarget struct {
	Addr  string
	Realm string
	UDP   bool
}

// udpClient is one worker's connected UDP socket and reply buffer, reused for
// every request so the generator spends its CPU on Kerberos, not on sockets.
type udpClient struct {
	c   net.Conn
	buf []byte
}

// exchange sends one request and returns the reply (over u when non-nil).
func (t KDCTarget) exchange(ctx context.Context, u *udpClient, req []byte) ([]byte, error) {
	if !t.UDP {
		rep, err := kdcclient.SendTCP(ctx, nil, t.Addr, req)
		if err != nil {
			if _, ok := kerr.CodeOf(err); ok {
				return rep, err
			}
			return nil, err
		}
		return rep, nil
	}
	if u == nil {
		c, err := net.Dial("udp", t.Addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		u = &udpClient{c: c, buf: make([]byte, 8192)}
	}
	u.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.c.Write(req); err != nil {
		return nil, err
	}
	n, err := u.c.Read(u.buf)
	if err != nil {
		return nil, err
	}
	rep := u.buf[:n]
	if e := kmsg.AsKRBError(rep); e != nil {
		if e.Code == kerr.KRB_ERR_RESPONSE_TOO_BIG {
			return kdcclient.SendTCP(ctx, nil, t.Addr, req)
		}
		return rep, e
	}
	return rep, nil
}

// clients makes one UDP socket per worker (nil for TCP).
func (t KDCTarget) clients(n int) ([]*udpClient, func(), error) {
	us := make([]*udpClient, n)
	if !t.UDP {
		return us, func() {}, nil
	}
	for i := range us {
		c, err := net.Dial("udp", t.Addr)
		if err != nil {
			return nil, nil, err
		}
		us[i] = &udpClient{c: c, buf: make([]byte, 8192)}
	}
	return us, func() {
		for _, u := range us {
			u.c.Close()
		}
	}, nil
}

// AS sends one AS-REQ with PA-ENC-TIMESTAMP (aes256) and checks the reply
// decrypts: the "AS-REQ with pre-auth" of the benchmark.
func (t KDCTarget) AS(ctx context.Context, uc *udpClient, u User) (*kmsg.KDCReply, error) {
	pa, err := kmsg.NewPAEncTimestamp(u.Key, 0, time.Now())
	if err != nil {
		return nil, err
	}
	req := kmsg.ASRequest{Realm: t.Realm, Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{u.Name}},
		Options: []int{kmsg.FlagForwardable}, ETypes: []int32{kcrypto.ETypeAES256SHA1}, PAData: []types.PAData{pa}}
	b, nonce, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := t.exchange(ctx, uc, b)
	if err != nil {
		return nil, err
	}
	return kmsg.DecodeKDCRep(rep, u.Key, kcrypto.UsageASRepEncPart, nonce)
}

// TGS sends one TGS-REQ with a TGT and checks the reply decrypts.
func (t KDCTarget) TGS(ctx context.Context, uc *udpClient, tgt kmsg.Credential, spn string) (*kmsg.KDCReply, error) {
	r := kmsg.TGSRequest{Realm: t.Realm, Client: tgt.Info.PName, ClientRealm: tgt.Info.PRealm, TGT: tgt.Ticket, SessionKey: tgt.Info.Key,
		Service: kmsg.ParsePrincipalName(spn), Options: []int{kmsg.FlagForwardable}}
	b, nonce, key, usage, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	rep, err := t.exchange(ctx, uc, b)
	if err != nil {
		return nil, err
	}
	return kmsg.DecodeKDCRep(rep, key, usage, nonce)
}

// LoadAS measures AS-REQs spread over the users.
func LoadAS(ctx context.Context, t KDCTarget, users []User, conc, ops int, max time.Duration) Result {
	us, done, err := t.clients(conc)
	if err != nil {
		return Result{Errors: 1, FirstErr: err}
	}
	defer done()
	return Run(ctx, conc, ops, max, func(ctx context.Context, w, i int) error {
		_, err := t.AS(ctx, us[w], users[i%len(users)])
		return err
	})
}

// LoadTGS measures TGS-REQs, alternating two SPNs; each worker logs on once.
func LoadTGS(ctx context.Context, t KDCTarget, users []User, spns []string, conc, ops int, max time.Duration) (Result, error) {
	us, done, err := t.clients(conc)
	if err != nil {
		return Result{}, err
	}
	defer done()
	tgts := make([]kmsg.Credential, conc)
	for w := range tgts {
		rep, err := t.AS(ctx, us[w], users[w%len(users)])
		if err != nil {
			return Result{}, fmt.Errorf("TGT for %s: %w", users[w%len(users)].Name, err)
		}
		tgts[w] = rep.Credential()
	}
	return Run(ctx, conc, ops, max, func(ctx context.Context, w, i int) error {
		_, err := t.TGS(ctx, us[w], tgts[w], spns[i%len(spns)])
		return err
	}), nil
}
