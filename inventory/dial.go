package inventory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// conn is one live SSH connection.
type conn struct {
	client   *ssh.Client
	sessions chan struct{} // MaxSessionsPerConn slots
	dead     chan struct{} // closed once the connection has ended
	via      *entry        // the bastion this connection goes through, kept busy
	hostKey  ssh.PublicKey // the key the host presented (and passed)

	shellMu sync.Mutex     // held by the Query using the shell
	shell   *residentShell // see Query; nil until the first one
	// noShell: a resident shell ended before it was set up (sudo
	// refused, no mktemp or /proc, a script that exits in the first two):
	// Query runs as Run on this connection.
	noShell bool

	heard atomic.Int64 // unix nanos of the node's last answer (startKeepAlive)

	// kaMu is held by the keepalive check while it runs (startKeepAlive).
	kaMu      sync.Mutex
	keepalive *time.Timer // nil: no keepalives
	kaStopped bool        // the connection ended: no more checks
}

// answered notes that the node just answered on c: the link is alive.
func (c *conn) answered() { c.heard.Store(time.Now().UnixNano()) }

// quiet is how long the node has not answered on c.
func (c *conn) quiet() time.Duration { return time.Since(time.Unix(0, c.heard.Load())) }

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// dial connects e, directly or through the jump host before it, holding
// one concurrency slot (jump-host dials run inside their node's slot).
func (p *Pool) dial(e *entry) (*conn, error) {
	if !e.isHop {
		if err := p.acquireSlot(p.ctx); err != nil {
			return nil, fmt.Errorf("%s: connect: %w", e.describe(), err)
		}
		defer p.releaseSlot()
	}
	start := time.Now()
	var (
		c   *conn
		err error
	)
	if e.via != nil {
		c, err = p.dialVia(e)
	} else {
		c, err = p.dialDirect(e)
	}
	if err != nil {
		p.log.Debug("ssh connect failed", zap.String("node", e.target.Name), zap.String("address", e.hostport), zap.Error(err))
		return nil, err
	}
	p.log.Debug("ssh connected", zap.String("node", e.target.Name), zap.String("address", e.hostport), zap.Duration("took", time.Since(start)))
	return c, nil
}

func (p *Pool) dialDirect(e *entry) (*conn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, e.hop.connectTimeout)
	nc, err := p.cfg.Dial(ctx, "tcp", e.hostport)
	cancel()
	if err != nil {
		return nil, connectError(e, "connect", err, false, e.hop.connectTimeout)
	}
	return p.handshake(e, nc)
}

// dialVia opens a direct-tcpip channel from the jump host e.via (itself
// dialled, through its own, when needed) to e and runs e's SSH handshake
// over it. A jump-host connection found broken is redialled once.
func (p *Pool) dialVia(e *entry) (*conn, error) {
	via := e.via
	for attempt := 0; ; attempt++ {
		bc, err := p.acquire(p.ctx, via)
		if err != nil {
			return nil, fmt.Errorf("%s: via %w", e.describe(), err)
		}
		ctx, cancel := context.WithTimeout(p.ctx, e.hop.connectTimeout)
		nc, err := bc.client.DialContext(ctx, "tcp", e.hostport)
		cancel()
		if err != nil {
			p.release(via)
			if attempt == 0 && isBroken(err, bc) {
				p.discard(via, bc)
				continue
			}
			var openErr *ssh.OpenChannelError
			if errors.As(err, &openErr) {
				// The jump host could not reach the node.
				return nil, fmt.Errorf("%s: connect via %s: %w: %v", e.describe(), via.describe(), ErrUnreachable, err)
			}
			return nil, connectError(e, "connect via "+via.describe(), err, false, e.hop.connectTimeout)
		}
		c, err := p.handshake(e, nc)
		if err != nil {
			p.release(via)
			return nil, err
		}
		return c, nil
	}
}

// handshake runs the SSH handshake over nc within the connect timeout.
// The timer closes the conn, which works for TCP and for tunnelled
// channels (which have no deadlines). A connection through a jump host
// keeps it busy until it ends (see watch).
func (p *Pool) handshake(e *entry, nc net.Conn) (*conn, error) {
	timeout := e.hop.connectTimeout
	v := &verifier{h: e.hosts, node: e.describe(), hostport: e.hostport}
	cfg := &ssh.ClientConfig{
		User:              e.hop.user,
		Auth:              e.auth.methods(), // none when authErr
		HostKeyCallback:   v.verify,
		HostKeyAlgorithms: e.hosts.algorithms(e.hostport),
		Timeout:           timeout,
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		nc.Close()
	})
	stop := context.AfterFunc(p.ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, e.hostport, cfg)
	stop()
	if !timer.Stop() && err == nil {
		sc.Close()
		err = errors.New("handshake finished too late")
	}
	switch {
	case err == nil:
	case v.err != nil:
		return nil, fmt.Errorf("%s: %w", e.describe(), v.err)
	case timedOut.Load():
		return nil, fmt.Errorf("%s: ssh handshake did not finish within %s: %w", e.describe(), timeout, ErrTimeout)
	case e.authErr != nil && strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return nil, fmt.Errorf("%s: ssh login as %s: %w: %v", e.describe(), cfg.User, ErrAuth, e.authErr)
	default:
		return nil, connectError(e, "ssh handshake as "+cfg.User, err, true, timeout)
	}
	c := &conn{
		client:   ssh.NewClient(sc, noChannels, noRequests),
		sessions: make(chan struct{}, MaxSessionsPerConn),
		dead:     make(chan struct{}),
		via:      e.via,
		hostKey:  v.key,
	}
	p.live.Add(1)
	p.startKeepAlive(e, c)
	p.wg.Add(1)
	go p.watch(e, c, chans, reqs)
	return c, nil
}

// noChannels and noRequests are closed: ssh.NewClient's two goroutines
// that would serve a connection's incoming channels and requests end at
// once, and watch serves them instead, in the goroutine it runs per
// connection anyway (20,000 fewer stacks at 10,000 nodes).
var noChannels, noRequests = func() (chan ssh.NewChannel, chan *ssh.Request) {
	chans, reqs := make(chan ssh.NewChannel), make(chan *ssh.Request)
	close(chans)
	close(reqs)
	return chans, reqs
}()

// watch refuses what the node asks of the connection until it ends,
// whoever ended it, and then notices the end.
func (p *Pool) watch(e *entry, c *conn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	defer p.wg.Done()
	refuseIncoming(chans, reqs)
	c.client.Wait()
	close(c.dead)
	c.stopKeepAlive()
	p.live.Add(-1)
	e.mu.Lock()
	if e.conn == c {
		e.conn = nil
	}
	e.mu.Unlock()
	if c.via != nil {
		p.release(c.via)
	}
}

// refuseIncoming refuses every channel a node opens and every global
// request it sends (OpenSSH's hostkeys-00@openssh.com, keepalives), as
// ssh.Client does (drover forwards nothing), until the connection ends
// and x/crypto closes both. They must be drained: a full one stops the
// connection.
func refuseIncoming(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	for chans != nil || reqs != nil {
		select {
		case ch, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			_ = ch.Reject(ssh.UnknownChannelType, "drover accepts no channel from a node")
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			_ = r.Reply(false, nil)
		}
	}
}

// startKeepAlive arms c's keepalive check: keepalive@openssh.com goes
// out while the connection is in use and the node has been quiet for
// KeepAlive; one left unanswered for KeepAlive or ConnectTimeout,
// whichever is longer, closes the connection, so a command on a dead link
// fails instead of hanging. Any answer, even "unsupported", proves the
// link alive, and so does a command's: a connection whose commands answer
// more often than every KeepAlive needs no keepalives at all. An idle
// connection gets none either: nobody waits on it, and once a use starts,
// the check runs within KeepAlive.
//
// The check is a timer, not a goroutine waiting on one: a goroutine per
// connection was 10,000 stacks at 10,000 nodes (docs/BENCHMARKS-SCALE.md).
func (p *Pool) startKeepAlive(e *entry, c *conn) {
	every := e.hop.keepAlive
	if every < 0 {
		return
	}
	c.answered()
	wait := max(every, e.hop.connectTimeout)
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	c.keepalive = time.AfterFunc(every, func() {
		c.kaMu.Lock()
		defer c.kaMu.Unlock()
		if c.kaStopped {
			return
		}
		if quiet := c.quiet(); quiet < every {
			c.keepalive.Reset(every - quiet)
			return
		}
		if !e.uses(c) {
			c.keepalive.Reset(every)
			return
		}
		deadline := time.AfterFunc(wait, func() { c.client.Close() })
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		answered := deadline.Stop()
		if err != nil || !answered {
			p.log.Info("ssh keepalive failed; closing connection", zap.String("node", e.target.Name), zap.String("address", e.hostport), zap.Error(err))
			c.client.Close()
			return
		}
		c.answered()
		c.keepalive.Reset(every)
	})
}

// stopKeepAlive ends c's keepalive check, waiting for one that is running
// (the connection has ended, so it fails at once): nothing of the pool's
// runs after Close.
func (c *conn) stopKeepAlive() {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	c.kaStopped = true
	if c.keepalive != nil {
		c.keepalive.Stop()
	}
}

// uses reports whether c is e's connection and in use.
func (e *entry) uses(c *conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conn == c && e.busy > 0
}
