package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Session is one SSH session on a node's pooled connection, dialled
// through its route like every Run, for a caller that talks to a command
// while it runs (the setup wizard's preflight). Close frees its slots.
type Session struct {
	*ssh.Session
	// Target is the node as resolved: the login user, address and port dialled.
	Target Target
	// HostKey is the key the node presented, which known_hosts holds.
	HostKey ssh.PublicKey
	close   func()
}

// Session opens a session on t. Errors are classified as Run's are; a
// host key that is not known is a *HostKeyError carrying the key.
func (p *Pool) Session(ctx context.Context, t Target) (*Session, error) {
	e, err := p.entryFor(t)
	if err != nil {
		return nil, err
	}
	t = e.resolved(t)
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx, e)
		if err != nil {
			return nil, err
		}
		select {
		case c.sessions <- struct{}{}:
		case <-ctx.Done():
			p.release(e)
			return nil, fmt.Errorf("%s: waiting for a session: %w (%w)", describe(t), ErrTimeout, ctx.Err())
		}
		if err := p.acquireSlot(ctx); err != nil {
			<-c.sessions
			p.release(e)
			return nil, fmt.Errorf("%s: waiting for a session: %w", describe(t), err)
		}
		free := func() {
			p.releaseSlot()
			<-c.sessions
			p.release(e)
		}
		sess, err := c.client.NewSession()
		if err != nil {
			free()
			if isBroken(err, c) {
				p.discard(e, c)
				if attempt == 0 {
					continue
				}
				return nil, fmt.Errorf("%s: open session: %w: %v", describe(t), ErrUnreachable, err)
			}
			return nil, fmt.Errorf("%s: open session: %w", describe(t), err)
		}
		return &Session{Session: sess, Target: t, HostKey: c.hostKey, close: sync.OnceFunc(func() {
			sess.Close()
			free()
		})}, nil
	}
}

// Resolved is t with the login user, address and port its route
// resolves to (ssh_config and defaults applied), as Session dials it.
func (p *Pool) Resolved(t Target) (Target, error) {
	e, err := p.entryFor(t)
	if err != nil {
		return t, err
	}
	return e.resolved(t), nil
}

// Command wraps script for the login user as Run does (sudo -n for
// anyone but root), with no time limit of its own.
func (s *Session) Command(script string) string { return remoteCommand(s.Target, script, 0) }

// SudoRefused is the ErrSudo error when the command's result shows that
// sudo wanted a password or is missing, nil otherwise.
func (s *Session) SudoRefused(stderr []byte, exitCode int) error {
	err := checkSudo(s.Target, Result{Stderr: stderr, ExitCode: exitCode})
	if err != nil && !errors.Is(err, ErrSudo) {
		return fmt.Errorf("%w: %v", ErrSudo, err)
	}
	return err
}

// Close ends the session and frees its slots; it is idempotent.
func (s *Session) Close() error {
	s.close()
	return nil
}
