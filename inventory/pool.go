package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
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
	log       *zap.Logger
	auth      *auth
	hosts     *hostKeys
	slots     chan struct{}
	maxOutput int

	ctx    context.Context // cancelled by Close: aborts dials and waits
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[string]*entry
	bastion *entry
	closed  bool

	wg   sync.WaitGroup // every goroutine the pool starts
	live atomic.Int64
}

var _ Runner = (*Pool)(nil)

// entry is one node's slot in the pool: its live connection, or the dial
// in flight, and how busy it is (a busy connection is never reaped).
type entry struct {
	target    Target // the first target seen for this key, named in messages
	hostport  string
	isBastion bool

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

// NewPool loads keys (identity files, then ssh-agent) and the known_hosts
// file, and starts the idle reaper. Close releases everything.
func NewPool(cfg Config, log *zap.Logger) (*Pool, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a, err := loadAuth(cfg.IdentityFiles, log)
	if err != nil {
		return nil, err
	}
	hosts, err := newHostKeys(cfg.KnownHostsFile, cfg.AcceptNewHostKeys, log)
	if err != nil {
		a.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:       cfg,
		log:       log,
		auth:      a,
		hosts:     hosts,
		slots:     make(chan struct{}, cfg.Concurrency),
		maxOutput: MaxOutput,
		ctx:       ctx,
		cancel:    cancel,
		entries:   map[string]*entry{},
	}
	if b := cfg.Bastion; b != nil {
		t := b.Target()
		p.bastion = &entry{target: t, hostport: t.HostPort(), isBastion: true}
	}
	if cfg.IdleTimeout > 0 {
		p.wg.Add(1)
		go p.reapIdle()
	}
	return p, nil
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
	p.auth.close()
	return nil
}

// snapshotLocked lists the entries, the bastion last.
func (p *Pool) snapshotLocked() []*entry {
	out := make([]*entry, 0, len(p.entries)+1)
	for _, e := range p.entries {
		out = append(out, e)
	}
	if p.bastion != nil {
		out = append(out, p.bastion)
	}
	return out
}

func effectiveUser(t Target) string {
	if t.User == "" {
		return "root"
	}
	return t.User
}

// entryFor finds or makes the entry for t's user@host:port.
func (p *Pool) entryFor(t Target) (*entry, error) {
	if t.Address == "" {
		return nil, fmt.Errorf("node %s: no address", t.Name)
	}
	key := effectiveUser(t) + "@" + t.HostPort()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	e := p.entries[key]
	if e == nil {
		e = &entry{target: t, hostport: t.HostPort()}
		p.entries[key] = e
	}
	return e, nil
}

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
	if e.isBastion {
		return "bastion " + e.hostport
	}
	return describe(e.target)
}

func describe(t Target) string {
	if t.Name == "" || t.Name == t.Address {
		return fmt.Sprintf("node %s", t.HostPort())
	}
	return fmt.Sprintf("node %s (%s)", t.Name, t.HostPort())
}
