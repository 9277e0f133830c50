package inventory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

var _ Querier = (*Pool)(nil)

// Query runs a short, read-only script the way Run does, but in a shell
// that stays open on the node's connection from one Query to the next:
// no session to open, no login shell and sh to start, no timeout wrapper.
// On a small node that is most of what a probe costs (a session's fork and
// three execs, about 20 ms of CPU, against a few ms for the script's own
// tools), and it saves the daemon the packets of a session's life.
//
// The shell runs one script at a time; a Query that finds it busy runs
// as Run does. Scripts run in the shell itself, not in a subshell, so they
// must set every variable and option they rely on, must not read stdin
// (it is /dev/null) and must not exit. What a script leaves behind is
// visible to the next: the probe uses that to keep facts that cannot
// change while the connection lives.
//
// When the shell cannot be started or ends under a script on a live
// connection (sudo refused, the script exited), the script runs once more
// as Run, which reports the error the way it always does; a connection
// lost under a script is ErrUnreachable. When ctx ends first, the shell's
// session is closed and the error wraps ErrTimeout: unlike Run, nothing
// on the node kills what the script left running, so Query is for scripts
// that cannot hang (health commands run under their own timeout).
func (p *Pool) Query(ctx context.Context, t Target, script string) (Result, error) {
	e, err := p.entryFor(t)
	if err != nil {
		return Result{}, err
	}
	c, err := p.acquire(ctx, e)
	if err != nil {
		return Result{}, err
	}
	if !c.shellMu.TryLock() {
		p.release(e)
		return p.Run(ctx, t, script, nil)
	}
	res, err := p.queryOn(ctx, t, c, script)
	c.shellMu.Unlock()
	ended := errors.Is(err, errShellGone) && ctx.Err() == nil
	lost := ended && !p.alive(c) // asked while c is still busy, so not reaped
	p.release(e)
	switch {
	case lost:
		p.discard(e, c)
		return res, fmt.Errorf("%s: connection lost while the command ran: %w", describe(t), ErrUnreachable)
	case ended, errors.Is(err, errNoShell):
		return p.Run(ctx, t, script, nil)
	}
	return res, err
}

// alive asks the node whether c still works, after its shell ended: a
// shell that ends on a live connection (sudo refused, the script exited)
// is retried with Run; a lost connection is an unreachable node, as for
// Run, and must not run the script a second time on a new one.
func (p *Pool) alive(c *conn) bool {
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	timer := time.NewTimer(p.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case err := <-answered:
		return err == nil
	case <-timer.C:
		return false
	}
}

var (
	// errNoShell: the resident shell could not start (no free session
	// slot, a broken connection); Run knows how to wait or redial.
	errNoShell = errors.New("no resident shell")
	// errShellGone: the resident shell ended before it answered.
	errShellGone = errors.New("resident shell ended")
)

// queryOn runs script in c's shell, starting it when there is none. It is
// called with c.shellMu held.
func (p *Pool) queryOn(ctx context.Context, t Target, c *conn, script string) (Result, error) {
	if err := p.acquireSlot(ctx); err != nil {
		return Result{}, fmt.Errorf("%s: waiting for a session: %w", describe(t), err)
	}
	defer p.releaseSlot()
	if c.shell == nil {
		sh, err := startShell(t, c)
		if err != nil {
			return Result{}, errNoShell
		}
		c.shell = sh
	}
	res, err := c.shell.run(ctx, script, p.maxOutput)
	if err == nil {
		c.answered()
	}
	if err != nil {
		c.shell.close()
		c.shell = nil
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("%s: command cut off: %w (%w)", describe(t), ErrTimeout, context.Cause(ctx))
		case errors.Is(err, errTooMuchOutput):
			return res, fmt.Errorf("%s: command output is larger than %d bytes", describe(t), p.maxOutput)
		}
		return res, err
	}
	return res, nil
}

// residentShell is one sh session kept open on a connection, fed scripts
// on its stdin. It holds one of the connection's session slots.
type residentShell struct {
	sess    *ssh.Session
	stdin   io.WriteCloser
	stdout  io.Reader
	stderr  io.Reader
	release func() // gives the session slot back, once
}

// startShell opens the session, or fails at once when the connection has
// no free session slot (Run will wait for one).
func startShell(t Target, c *conn) (*residentShell, error) {
	select {
	case c.sessions <- struct{}{}:
	default:
		return nil, errors.New("no free session")
	}
	release := sync.OnceFunc(func() { <-c.sessions })
	sess, err := c.client.NewSession()
	if err != nil {
		release()
		return nil, err
	}
	sh := &residentShell{sess: sess, release: release}
	if sh.stdin, err = sess.StdinPipe(); err == nil {
		if sh.stdout, err = sess.StdoutPipe(); err == nil {
			sh.stderr, err = sess.StderrPipe()
		}
	}
	if err == nil {
		err = sess.Start(shellCommand(t))
	}
	if err != nil {
		sh.close()
		return nil, err
	}
	return sh, nil
}

// shellCommand is the resident shell for the login user, as remoteCommand
// wraps a script: sh for root, `sudo -n sh` for anyone else.
func shellCommand(t Target) string {
	if effectiveUser(t) != "root" {
		return "exec sudo -n sh"
	}
	return "exec sh"
}

func (sh *residentShell) close() {
	sh.sess.Close()
	sh.release()
}

// errTooMuchOutput: a stream went past the output limit.
var errTooMuchOutput = errors.New("output too large")

// run sends one script and reads both streams up to their end markers.
// The script runs in a brace group with stdin from /dev/null; then the
// shell prints "\n<marker> <status>" on stdout and "\n<marker>" on stderr.
// The marker is random for every script, so no output can fake it. Any
// error leaves the shell in an unknown state: the caller closes it.
func (sh *residentShell) run(ctx context.Context, script string, limit int) (Result, error) {
	var raw [16]byte
	rand.Read(raw[:])
	marker := hex.EncodeToString(raw[:])
	req := "{\n" + script + "\n} </dev/null\n" +
		"printf '\\n%s %s\\n' " + marker + " \"$?\"\n" +
		"printf '\\n%s\\n' " + marker + " >&2\n"

	stop := context.AfterFunc(ctx, func() { sh.sess.Close() })
	defer stop()
	var (
		stderr    []byte
		stderrErr error
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		stderr, _, stderrErr = readFrame(sh.stderr, []byte("\n"+marker), limit)
	})
	var stdout, status []byte
	_, err := io.WriteString(sh.stdin, req)
	if err != nil {
		err = errShellGone // the shell's stdin is closed: it ended
	} else {
		stdout, status, err = readFrame(sh.stdout, []byte("\n"+marker+" "), limit)
	}
	if err != nil {
		// Unblock the stderr reader: it may wait for a marker that will
		// never come.
		sh.sess.Close()
	}
	wg.Wait()
	if err == nil {
		err = stderrErr
	}
	res := Result{Stdout: stdout, Stderr: stderr}
	if err != nil {
		return res, err
	}
	code, convErr := strconv.Atoi(string(status))
	if convErr != nil {
		return res, errShellGone
	}
	res.ExitCode = code
	return res, nil
}

// readFrame reads r until sep followed by a line end, and returns what
// came before sep and what came after it. Nothing more is read: the shell
// is silent once it has printed the marker. It fails with errShellGone
// when r ends first and errTooMuchOutput past limit bytes.
func readFrame(r io.Reader, sep []byte, limit int) (body, after []byte, err error) {
	var buf []byte
	chunk := make([]byte, 8<<10)
	from := 0 // sep cannot start before this
	for {
		if i := bytes.Index(buf[from:], sep); i >= 0 {
			i += from
			if j := bytes.IndexByte(buf[i+len(sep):], '\n'); j >= 0 {
				end := i + len(sep) + j
				if i > limit {
					return nil, nil, errTooMuchOutput
				}
				if end+1 < len(buf) {
					// Output after the marker: something the script started
					// is still writing. The answer is suspect, so is the shell.
					return nil, nil, errShellGone
				}
				return buf[:i], buf[i+len(sep) : end], nil
			}
		} else {
			from = max(0, len(buf)-len(sep)+1)
		}
		if len(buf) > limit+len(sep)+32 {
			return nil, nil, errTooMuchOutput
		}
		n, rerr := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if rerr != nil && n == 0 {
			return buf, nil, errShellGone
		}
	}
}
