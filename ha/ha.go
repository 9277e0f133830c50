// Package ha makes several drover daemons on one cluster agree on one
// leader through etcd's own election (go.etcd.io/etcd/client/v3/concurrency):
// every daemon holds a session (a lease kept alive every TTL/3) and
// campaigns; the one whose key is oldest leads. The leader acts on the
// nodes, the others wait.
//
// A leader's right to act is a Term. It ends, for good, when the session
// ends (the lease expired or was revoked) or when the lease has not been
// renewed for longer than is safe (Term.MayAct): etcd may already have let
// the lease expire and elected another daemon, so this one must start no
// new step, even before its client notices.
package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// ErrFenced is wrapped by MayAct's answer once the term has ended.
var ErrFenced = errors.New("fenced")

// Config is one daemon's part in the election.
type Config struct {
	Client *clientv3.Client
	// Prefix is the cluster's key prefix ("/drover/<cluster>/").
	Prefix string
	// Name names this daemon to the others (status, metrics, logs).
	Name string
	// URL is where this daemon serves its API, so standbys can forward.
	URL string
	// LeaseTTL is the session's lease: how long a dead leader keeps the
	// lead (default 10s).
	LeaseTTL time.Duration
	Log      *zap.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Info is what a campaigning daemon publishes about itself.
type Info struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// Member is a daemon in the election: a live session and its candidacy.
type Member struct {
	cfg      Config
	session  *concurrency.Session
	election *concurrency.Election

	mu sync.Mutex
	// renewedUntil is the last moment this daemon may take its lease to be
	// alive: the last renewal's answer plus the TTL, less a margin for the
	// time the answer took to arrive.
	renewedUntil time.Time
	renewed      time.Time
	// stopKeepAlive ends the second keep-alive stream (see Join).
	stopKeepAlive context.CancelFunc
}

// ElectionPrefix is the election's name under a cluster's prefix: each
// candidate's key is it, "/" and its lease.
func ElectionPrefix(prefix string) string { return prefix + "leader" }

// Join opens a session: it grants the lease and keeps it alive.
func Join(ctx context.Context, cfg Config) (*Member, error) {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.LeaseTTL < 2*time.Second {
		return nil, fmt.Errorf("--lease-ttl %s: etcd leases are whole seconds, at least 2", cfg.LeaseTTL)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" {
		return nil, errors.New("ha: the daemon needs a name (--ha-name)")
	}
	ttl := int64(cfg.LeaseTTL / time.Second)
	// The session outlives ctx: a daemon told to stop keeps its lease
	// while its in-flight actions end, and Close then revokes it, so the
	// lead passes at once rather than after the TTL.
	s, err := newSession(ctx, cfg.Client, int(ttl))
	if err != nil {
		return nil, fmt.Errorf("etcd session: %w", err)
	}
	m := &Member{cfg: cfg, session: s, election: concurrency.NewElection(s, ElectionPrefix(cfg.Prefix))}
	// A second keep-alive stream on the session's lease: the client sends
	// one request per lease and answers every stream, so this one costs
	// nothing and tells when the lease was last renewed.
	kctx, stop := context.WithCancel(context.Background())
	m.stopKeepAlive = stop
	ka, err := cfg.Client.KeepAlive(kctx, s.Lease())
	if err != nil {
		stop()
		s.Close()
		return nil, fmt.Errorf("etcd keep-alive: %w", err)
	}
	// The lease is trusted from its first renewal's answer, not from the
	// grant: a grant sent during a partition and answered after it leaves
	// no trust to lead on, and a term won on it would end at once. And
	// the client's keep-alive stream can still sit on a connection that
	// died in the partition while the grant went through a new one.
	// The wait is short whatever the TTL: the client sends a new lease's
	// first renewal at its next 500 ms tick, and both streams are on it
	// by then; a lease it cannot renew closes ka by its TTL.
	select {
	case r, ok := <-ka:
		if ok && r.TTL > 0 {
			m.note(cfg.Now(), r.TTL)
			break
		}
		err = errors.New("the lease ended before its first renewal")
	case <-ctx.Done():
		err = fmt.Errorf("no renewal answered: %w", ctx.Err())
	}
	if err != nil {
		stop()
		s.Close()
		return nil, fmt.Errorf("etcd keep-alive: %w", err)
	}
	go func() {
		for r := range ka {
			m.note(m.cfg.Now(), r.TTL)
		}
	}()
	return m, nil
}

// newSession grants the lease under ctx and keeps it alive until Close.
func newSession(ctx context.Context, cli *clientv3.Client, ttl int) (*concurrency.Session, error) {
	grant, err := cli.Grant(ctx, int64(ttl))
	if err != nil {
		return nil, err
	}
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl), concurrency.WithLease(grant.ID), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		revokeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_, _ = cli.Revoke(revokeCtx, grant.ID)
	}
	return s, err
}

// margin is how much sooner than its TTL says a daemon stops trusting its
// lease: the renewal's answer took time to arrive, and clocks drift.
func margin(ttl time.Duration) time.Duration { return max(ttl/5, 500*time.Millisecond) }

func (m *Member) note(at time.Time, ttlSeconds int64) {
	if ttlSeconds <= 0 {
		return // the lease is gone: the session ends too
	}
	ttl := time.Duration(ttlSeconds) * time.Second
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := at.Add(ttl - margin(ttl)); u.After(m.renewedUntil) {
		m.renewedUntil, m.renewed = u, at
	}
}

// Name is the daemon's name.
func (m *Member) Name() string { return m.cfg.Name }

// Lease is the session's lease.
func (m *Member) Lease() clientv3.LeaseID { return m.session.Lease() }

// Done is closed when the session ends.
func (m *Member) Done() <-chan struct{} { return m.session.Done() }

// alive says why the lease can no longer be trusted, or nil.
func (m *Member) alive() error {
	select {
	case <-m.session.Done():
		return fmt.Errorf("%w: the etcd session ended (lease %x expired or revoked)", ErrFenced, int64(m.session.Lease()))
	default:
	}
	m.mu.Lock()
	until, renewed := m.renewedUntil, m.renewed
	m.mu.Unlock()
	if now := m.cfg.Now(); now.After(until) {
		return fmt.Errorf("%w: lease not renewed since %s (etcd unreachable or without quorum)", ErrFenced, renewed.UTC().Format(time.RFC3339))
	}
	return nil
}

// Campaign blocks until this daemon leads (or ctx ends, or the session
// does) and returns its term.
func (m *Member) Campaign(ctx context.Context) (*Term, error) {
	v, err := json.Marshal(Info{Name: m.cfg.Name, URL: m.cfg.URL})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.session.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	if err := m.election.Campaign(cctx, string(v)); err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	t := &Term{m: m, key: m.election.Key(), rev: m.election.Rev(), ended: make(chan struct{})}
	go t.watch()
	m.cfg.Log.Info("leading the cluster", zap.String("name", m.cfg.Name), zap.String("key", t.key))
	return t, nil
}

// Leader is the daemon leading now; ok is false when none does.
func (m *Member) Leader(ctx context.Context) (info Info, ok bool, err error) {
	resp, err := m.election.Leader(ctx)
	if errors.Is(err, concurrency.ErrElectionNoLeader) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, err
	}
	if len(resp.Kvs) == 0 {
		return Info{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &info); err != nil {
		return Info{}, false, fmt.Errorf("leader key %s: %w", resp.Kvs[0].Key, err)
	}
	return info, true, nil
}

// Members counts the daemons campaigning (the leader among them): one
// key each under the election prefix, held by its session's lease.
func (m *Member) Members(ctx context.Context) (int, error) {
	resp, err := m.cfg.Client.Get(ctx, ElectionPrefix(m.cfg.Prefix)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return int(resp.Count), nil
}

// Close ends the session: the lease is revoked, and the lead, if this
// daemon had it, passes at once.
func (m *Member) Close() error {
	m.stopKeepAlive()
	return m.session.Close()
}

// Term is one daemon's time as leader.
type Term struct {
	m     *Member
	key   string
	rev   int64
	once  sync.Once
	ended chan struct{}
	why   error
}

// watchEvery is how often a term checks its lease by itself, so Ended
// closes even while no step asks.
const watchEvery = 100 * time.Millisecond

func (t *Term) watch() {
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for range tick.C {
		if t.MayAct() != nil {
			return
		}
	}
}

// MayAct is nil while the term lasts, else why it ended. Once it has
// ended it never comes back: a daemon that lost the lead campaigns again
// with a new session.
func (t *Term) MayAct() error {
	select {
	case <-t.ended:
		return t.why
	default:
	}
	if err := t.m.alive(); err != nil {
		t.end(err)
		return t.why
	}
	return nil
}

func (t *Term) end(err error) {
	t.once.Do(func() {
		t.why = err
		t.m.cfg.Log.Error("lost the lead: no new step starts", zap.Error(err))
		close(t.ended)
	})
}

// Ended is closed when the term ends.
func (t *Term) Ended() <-chan struct{} { return t.ended }

// Guard is the comparison that holds while this term's leader key is the
// one etcd has: a write made conditional on it cannot land after another
// daemon was elected.
func (t *Term) Guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)
}

// Member is the daemon the term belongs to.
func (t *Term) Member() *Member { return t.m }
