package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/manifests"
)

// ErrClosed is returned by a Pool used after Close.
var ErrClosed = errors.New("ssh pool is closed")

// Pool is a Runner over SSH that keeps one connection per node
// (user@host:port), reused by every Run and DialTCP:
//   - concurrent first uses of a node share one dial, made on the pool's
//     behalf so that a caller giving up does not abort it for the others;
//   - Concurrency bounds dials plus sessions in flight across all nodes,
//     and MaxSessionsPerConn bounds sessions on one connection;
//   - ConnectTimeout bounds the TCP dial and the SSH handshake, so a dead
//     node costs its callers that long and never blocks other nodes;
//   - keepalives detect dead links; a connection found broken when a
//     session opens is dropped and redialled once, transparently;
//   - connections idle for IdleTimeout are closed.
type Pool struct {
	cfg       Config
	resolve   resolver
	log       *zap.Logger
	agent     *keyAgent // nil without SSH_AUTH_SOCK
	slots     chan struct{}
	maxOutput int

	ctx    context.Context // cancelled by Close: aborts dials and waits
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[string]*entry    // by route: jump hosts then node, user@host:port each
	routes  map[string][]*entry  // by Target (see routeKey)
	auths   map[string]*auth     // by identity files
	hosts   map[string]*hostKeys // by known_hosts file and acceptNew
	closed  bool

	wg   sync.WaitGroup // every goroutine the pool starts
	live atomic.Int64
}

var _ Runner = (*Pool)(nil)

// entry is one connection's slot in the pool, a node's or a jump host's:
// its live connection, or the dial in flight, and how busy it is (a busy
// connection is never reaped). A jump host's entry is shared by every
// node behind it, so they share its one connection.
type entry struct {
	target   Target // the first target seen for this key, named in messages
	hop      hop
	hostport string
	isHop    bool   // a jump host, not a node
	via      *entry // the jump host this connection goes through; nil: direct
	auth     *auth
	// authErr: the keys for this host could not be loaded. The dial still
	// runs, so reachability and the host key are checked, and the login
	// fails with this error.
	authErr error
	hosts   *hostKeys

	mu       sync.Mutex
	conn     *conn
	dialing  *dialCall
	busy     int
	lastUsed time.Time
}

// dialCall is one dial shared by every caller that waited for it.
type dialCall struct {
	done chan struct{}
	err  error
}

// NewPool connects to ssh-agent (when SSH_AUTH_SOCK is set) and loads
// the cluster's keys and known_hosts file, and starts the idle reaper.
// A node's own keys and known_hosts load on its first use. Close
// releases everything.
func NewPool(cfg Config, log *zap.Logger) (*Pool, error) {
	if log == nil {
		log = zap.NewNop()
	}
	raw := cfg
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:       cfg,
		resolve:   newResolver(raw),
		log:       log,
		agent:     connectAgent(log),
		slots:     make(chan struct{}, cfg.Concurrency),
		maxOutput: MaxOutput,
		ctx:       ctx,
		cancel:    cancel,
		entries:   map[string]*entry{},
		routes:    map[string][]*entry{},
		auths:     map[string]*auth{},
		hosts:     map[string]*hostKeys{},
	}
	if err := p.preload(raw); err != nil {
		cancel()
		p.agent.close()
		return nil, err
	}
	if cfg.IdleTimeout > 0 {
		p.wg.Add(1)
		go p.reapIdle()
	}
	return p, nil
}

// preload loads the cluster-wide keys and known_hosts file up front, so
// a mistake in them fails here rather than at every node. Without an
// ssh_config, the default identities are what every node gets.
func (p *Pool) preload(raw Config) error {
	files := expandAll(raw.IdentityFiles)
	if len(files) > 0 || raw.SSHConfig == nil {
		if len(files) == 0 {
			files = p.resolve.identities()
		}
		if _, err := p.authFor(files, false); err != nil {
			return err
		}
	}
	if raw.KnownHostsFile != "" {
		if _, err := p.hostsFor(manifests.ExpandHome(raw.KnownHostsFile), raw.AcceptNewHostKeys); err != nil {
			return err
		}
	}
	return nil
}

// authFor is the key set for files, loaded once. Called with p.mu held or
// before the pool is shared.
func (p *Pool) authFor(files []string, identitiesOnly bool) (*auth, error) {
	key := fmt.Sprintf("%t%q", identitiesOnly, files)
	if a := p.auths[key]; a != nil {
		return a, nil
	}
	a, err := loadAuth(files, identitiesOnly, p.agent, p.log)
	if err != nil {
		return nil, err
	}
	p.auths[key] = a
	return a, nil
}

// hostsFor is the checker for one known_hosts file, made once.
func (p *Pool) hostsFor(path string, acceptNew bool) (*hostKeys, error) {
	key := fmt.Sprintf("%t%s", acceptNew, path)
	if h := p.hosts[key]; h != nil {
		return h, nil
	}
	h, err := newHostKeys(path, acceptNew, p.log)
	if err != nil {
		return nil, err
	}
	p.hosts[key] = h
	return h, nil
}

// Connections is the number of live SSH connections, bastion included.
func (p *Pool) Connections() int { return int(p.live.Load()) }

// Close closes every connection, aborts dials in flight and waits for
// the pool's goroutines. Runs in flight fail. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	entries := p.snapshotLocked()
	p.mu.Unlock()

	for _, e := range entries {
		e.mu.Lock()
		c := e.conn
		e.conn = nil
		e.mu.Unlock()
		if c != nil {
			c.client.Close()
		}
	}
	p.wg.Wait()
	p.agent.close()
	return nil
}

// snapshotLocked lists the entries, nodes before the jump hosts they go
// through, so closing in this order ends tunnels before their carriers.
func (p *Pool) snapshotLocked() []*entry {
	out := make([]*entry, 0, len(p.entries))
	for _, e := range p.entries {
		if !e.isHop {
			out = append(out, e)
		}
	}
	for _, e := range p.entries {
		if e.isHop {
			out = append(out, e)
		}
	}
	return out
}

// entryFor finds or makes the entry for t, and for each jump host on
// its route; the route is resolved once per distinct Target.
func (p *Pool) entryFor(t Target) (*entry, error) {
	if t.Address == "" {
		return nil, fmt.Errorf("node %s: no address", t.Name)
	}
	rk := routeKey(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if r := p.routes[rk]; r != nil {
		return r[len(r)-1], nil
	}
	hops, err := p.resolve.route(t)
	if err != nil {
		return nil, err
	}
	var (
		entries []*entry
		via     *entry
		key     string
	)
	for i, h := range hops {
		key += ">" + h.key()
		e := p.entries[key]
		if e == nil {
			a, authErr := p.authFor(h.identityFiles, h.identitiesOnly)
			hk, err := p.hostsFor(h.knownHosts, h.acceptNew)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", h.label, err)
			}
			e = &entry{target: t, hop: h, hostport: h.hostport(), isHop: i < len(hops)-1, via: via, auth: a, authErr: authErr, hosts: hk}
			if e.isHop {
				e.target = Target{Name: "bastion", Address: h.address, Port: h.port, User: h.user}
			}
			p.entries[key] = e
		}
		entries = append(entries, e)
		via = e
	}
	p.routes[rk] = entries
	return via, nil
}

// effectiveUser is the login user of a resolved Target.
func effectiveUser(t Target) string {
	if t.User == "" {
		return "root"
	}
	return t.User
}

// routeKey tells Targets apart for the route cache.
func routeKey(t Target) string { return fmt.Sprintf("%#v", t) }

// acquire returns e's live connection, dialling it when needed, and marks
// it busy; callers must release(e).
func (p *Pool) acquire(ctx context.Context, e *entry) (*conn, error) {
	for tries := 0; ; tries++ {
		e.mu.Lock()
		if c := e.conn; c != nil && !c.isDead() {
			e.busy++
			e.lastUsed = time.Now()
			e.mu.Unlock()
			return c, nil
		}
		call := e.dialing
		if call == nil {
			call = &dialCall{done: make(chan struct{})}
			if !p.startDial(e, call) {
				e.mu.Unlock()
				return nil, ErrClosed
			}
			e.dialing = call
		}
		e.mu.Unlock()

		select {
		case <-call.done:
			if call.err != nil {
				return nil, call.err
			}
			if tries >= 2 {
				return nil, fmt.Errorf("%s: connection closed as soon as it was made: %w", e.describe(), ErrUnreachable)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for connection: %w (%w)", e.describe(), ErrTimeout, ctx.Err())
		}
	}
}

// startDial runs the dial in the pool's own goroutine. Called with e.mu held.
func (p *Pool) startDial(e *entry, call *dialCall) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c, err := p.dial(e)
		e.mu.Lock()
		e.dialing = nil
		if err == nil && p.ctx.Err() != nil {
			c.client.Close() // Close ran while we dialled
			err = ErrClosed
		}
		if err == nil {
			e.conn = c
			e.lastUsed = time.Now()
		}
		call.err = err
		e.mu.Unlock()
		close(call.done)
	}()
	return true
}

func (p *Pool) release(e *entry) {
	e.mu.Lock()
	e.busy--
	e.lastUsed = time.Now()
	e.mu.Unlock()
}

// discard drops c from e (if still current) and closes it, so the next
// use redials.
func (p *Pool) discard(e *entry, c *conn) {
	e.mu.Lock()
	if e.conn == c {
		e.conn = nil
	}
	e.mu.Unlock()
	c.client.Close()
}

// acquireSlot takes one of the Concurrency slots.
func (p *Pool) acquireSlot(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (%w)", ErrTimeout, ctx.Err())
	case <-p.ctx.Done():
		return ErrClosed
	}
}

func (p *Pool) releaseSlot() { <-p.slots }

// reapIdle closes connections nobody used for IdleTimeout.
func (p *Pool) reapIdle() {
	defer p.wg.Done()
	every := min(max(p.cfg.IdleTimeout/2, 10*time.Millisecond), 30*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-tick.C:
			p.mu.Lock()
			entries := p.snapshotLocked()
			p.mu.Unlock()
			for _, e := range entries {
				e.mu.Lock()
				c := e.conn
				if c == nil || e.busy > 0 || now.Sub(e.lastUsed) < p.cfg.IdleTimeout {
					c = nil
				} else {
					e.conn = nil
				}
				e.mu.Unlock()
				if c != nil {
					p.log.Debug("closing idle ssh connection", zap.String("node", e.target.Name), zap.String("address", e.hostport))
					c.client.Close()
				}
			}
		}
	}
}

// describe names the node and address for messages.
func (e *entry) describe() string {
	return e.hop.label
}

func describe(t Target) string {
	if t.Name == "" || t.Name == t.Address {
		return fmt.Sprintf("node %s", t.HostPort())
	}
	return fmt.Sprintf("node %s (%s)", t.Name, t.HostPort())
}
