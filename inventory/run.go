package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// After a cancel, a session gets termGrace to end on TERM before KILL and
// close, then killGrace before its whole connection is deemed unresponsive
// and closed.
const (
	termGrace = 500 * time.Millisecond
	killGrace = 2 * time.Second
)

// sudoPasswordPrompt is what `sudo -n` prints when it would need a password.
const sudoPasswordPrompt = "sudo: a password is required"

// remoteCommand wraps script for the login user: root runs it with sh,
// anyone else through `sudo -n`, which fails instead of prompting.
//
// It starts with exec so the command replaces the login shell and stays
// the session's process group leader (dash would fork it into another
// group), where sshd's killpg for a "signal" request reaches it.
//
// With a budget (the time left on the caller's context), coreutils
// timeout kills the script's process group on the node once the budget
// plus a second of slack is spent. Signals alone cannot be relied on:
// OpenSSH 9.2 refuses them for root sessions ("session signalling
// requires privilege separation"), a non-root user cannot KILL what sudo
// runs as root, and a node cut off from us gets no signal at all. The
// timeout runs inside sudo, as root, so it can kill everything.
func remoteCommand(t Target, script string, budget time.Duration) string {
	cmd := "sh -c " + Quote(script)
	if budget > 0 {
		secs := int64((budget+time.Second-1)/time.Second) + 1
		cmd = "timeout -s KILL " + strconv.FormatInt(secs, 10) + " " + cmd
	}
	if effectiveUser(t) != "root" {
		cmd = "sudo -n " + cmd
	}
	return "exec " + cmd
}

// brokenConnError marks a session that could not open because the
// connection was gone: nothing ran, so the caller may redial and retry.
type brokenConnError struct{ err error }

func (e *brokenConnError) Error() string { return e.err.Error() }

// Run runs script on the node (see Runner). Output beyond MaxOutput per
// stream is an error. When ctx ends first, the remote command's process
// group is sent TERM then KILL, the session is closed and the error wraps ErrTimeout;
// when ctx has a deadline, the node also enforces it (see remoteCommand).
func (p *Pool) Run(ctx context.Context, t Target, script string, stdin io.Reader) (Result, error) {
	e, err := p.entryFor(t)
	if err != nil {
		return Result{}, err
	}
	t = e.resolved(t)
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx, e)
		if err != nil {
			return Result{}, err
		}
		var budget time.Duration
		if deadline, ok := ctx.Deadline(); ok {
			budget = time.Until(deadline)
		}
		res, err := p.runOn(ctx, t, e, c, remoteCommand(t, script, budget), stdin)
		p.release(e)
		var broken *brokenConnError
		if errors.As(err, &broken) {
			p.discard(e, c)
			if attempt == 0 {
				continue
			}
			return res, fmt.Errorf("%s: open session: %w: %v", describe(t), ErrUnreachable, broken.err)
		}
		if err != nil {
			return res, err
		}
		return res, checkSudo(t, res)
	}
}

func (p *Pool) runOn(ctx context.Context, t Target, e *entry, c *conn, cmd string, stdin io.Reader) (Result, error) {
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%s: waiting for a session: %w (%w)", describe(t), ErrTimeout, ctx.Err())
	}
	defer func() { <-c.sessions }()
	if err := p.acquireSlot(ctx); err != nil {
		return Result{}, fmt.Errorf("%s: waiting for a session: %w", describe(t), err)
	}
	defer p.releaseSlot()

	sess, err := c.client.NewSession()
	if err != nil {
		if isBroken(err, c) {
			return Result{}, &brokenConnError{err}
		}
		return Result{}, fmt.Errorf("%s: open session: %w", describe(t), err)
	}
	defer sess.Close()
	abort := sync.OnceFunc(func() {
		sess.Signal(ssh.SIGKILL)
		sess.Close()
	})
	stdout := &capBuffer{limit: p.maxOutput, overflow: abort}
	stderr := &capBuffer{limit: p.maxOutput, overflow: abort}
	sess.Stdout, sess.Stderr = stdout, stderr
	if stdin != nil {
		sess.Stdin = stdin
	}
	if err := sess.Start(cmd); err != nil {
		if isBroken(err, c) {
			p.discard(e, c)
			return Result{}, fmt.Errorf("%s: start command: %w: %v", describe(t), ErrUnreachable, err)
		}
		return Result{}, fmt.Errorf("%s: start command: %w", describe(t), err)
	}

	k := &killer{sess: sess, abort: abort, client: c.client}
	stop := context.AfterFunc(ctx, k.kill)
	waitErr := sess.Wait()
	stop()
	cancelled := k.finish()

	res := Result{Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes()}
	var exitErr *ssh.ExitError
	if waitErr == nil || errors.As(waitErr, &exitErr) {
		c.answered()
	}
	switch {
	case cancelled:
		return res, fmt.Errorf("%s: command cut off: %w (%w)", describe(t), ErrTimeout, context.Cause(ctx))
	case stdout.over || stderr.over:
		return res, fmt.Errorf("%s: command output is larger than %d bytes", describe(t), p.maxOutput)
	case waitErr == nil:
		return res, nil
	case errors.As(waitErr, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
		return res, nil
	default:
		// No exit status: the connection died under the command.
		p.discard(e, c)
		return res, fmt.Errorf("%s: connection lost while the command ran: %w: %v", describe(t), ErrUnreachable, waitErr)
	}
}

// killer ends a session when its context ends. It sends TERM first,
// which sudo and timeout pass on to the script, then after termGrace
// KILL and closes the session; if even that is not acknowledged within
// killGrace, it closes the connection.
type killer struct {
	sess   *ssh.Session
	abort  func() // KILL and close
	client *ssh.Client

	mu       sync.Mutex
	fired    bool
	finished bool
	timers   []*time.Timer
}

func (k *killer) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.finished {
		return
	}
	k.fired = true
	k.sess.Signal(ssh.SIGTERM)
	k.timers = append(k.timers,
		time.AfterFunc(termGrace, k.abort),
		time.AfterFunc(termGrace+killGrace, func() { k.client.Close() }))
}

// finish stops the timers and reports whether kill ran.
func (k *killer) finish() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.finished = true
	for _, t := range k.timers {
		t.Stop()
	}
	return k.fired
}

// checkSudo turns sudo's refusal to prompt into ErrSudo.
func checkSudo(t Target, res Result) error {
	if effectiveUser(t) == "root" {
		return nil
	}
	switch {
	case res.ExitCode == 1 && bytes.Contains(res.Stderr, []byte(sudoPasswordPrompt)):
		return fmt.Errorf("%s: %w: user %s may not run sudo without a password; allow it with NOPASSWD in sudoers, or connect as root", describe(t), ErrSudo, effectiveUser(t))
	case res.ExitCode == 127 && (bytes.Contains(res.Stderr, []byte("sudo: not found")) || bytes.Contains(res.Stderr, []byte("sudo: command not found"))):
		return fmt.Errorf("%s: sudo is not installed; user %s needs it, or connect as root", describe(t), effectiveUser(t))
	}
	return nil
}

// capBuffer keeps the first limit bytes and calls overflow once past it.
// It never fails a write, so the session keeps draining until closed.
type capBuffer struct {
	buf      bytes.Buffer
	limit    int
	over     bool
	overflow func()
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		if !b.over {
			b.over = true
			b.overflow()
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// DialTCP opens a TCP connection from the node to addr through a
// direct-tcpip channel. An addr on the node's address as the manifest
// names it (an ssh_config alias, say) means the node's resolved address. The connection keeps the node's SSH connection
// busy (never reaped) until it is closed. A refusal by the node (nothing
// listening at addr) is returned as is, not as a transport failure.
func (p *Pool) DialTCP(ctx context.Context, t Target, addr string) (net.Conn, error) {
	e, err := p.entryFor(t)
	if err != nil {
		return nil, err
	}
	addr = e.ownAddress(t, addr)
	t = e.resolved(t)
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx, e)
		if err != nil {
			return nil, err
		}
		if err := p.acquireSlot(ctx); err != nil {
			p.release(e)
			return nil, fmt.Errorf("%s: dial %s: %w", describe(t), addr, err)
		}
		nc, err := c.client.DialContext(ctx, "tcp", addr)
		p.releaseSlot()
		if err == nil {
			return &trackedConn{Conn: nc, done: sync.OnceFunc(func() { p.release(e) })}, nil
		}
		p.release(e)
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s: dial %s: %w (%w)", describe(t), addr, ErrTimeout, ctx.Err())
		case isBroken(err, c) && attempt == 0:
			p.discard(e, c)
			continue
		case isBroken(err, c):
			return nil, fmt.Errorf("%s: dial %s: %w: %v", describe(t), addr, ErrUnreachable, err)
		}
		return nil, fmt.Errorf("%s: dial %s from the node: %w", describe(t), addr, err)
	}
}

// trackedConn releases its SSH connection when closed.
type trackedConn struct {
	net.Conn
	done func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.done()
	return err
}

// resolved is t with the user, address and port its route resolved, so
// the login user's wrapping (sudo) and messages use what was dialled.
func (e *entry) resolved(t Target) Target {
	t.User, t.Address, t.Port = e.hop.user, e.hop.address, e.hop.port
	return t
}

// ownAddress maps addr on t's address as given (an alias) to the
// resolved one: a health check "on the node" dials what the node is.
func (e *entry) ownAddress(t Target, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != t.Address || host == e.hop.address {
		return addr
	}
	return net.JoinHostPort(e.hop.address, port)
}
