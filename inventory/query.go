package inventory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
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
// prelude is what script relies on and does not change between calls:
// function definitions, constants. It must print nothing. A resident
// shell runs it once and not again while the callers pass the same
// prelude, so each call sends the node only script.
//
// The answer goes back as one write, so sshd sends it as one packet: the
// script's stderr is kept in a file on the node and sent only when there
// is some, and a script may leave the end of its output in the variable
// dq_out instead of printing it; the shell prints it with the frame's end.
//
// The shell runs one script at a time; a Query that finds it busy runs
// as Run does. Scripts run in the shell itself, not in a subshell, so they
// must set every variable and option they rely on, must not read stdin
// (it is /dev/null), must not exit and must leave fd 9 alone. What a
// script leaves behind is visible to the next: the probe uses that to
// keep facts that cannot change while the connection lives.
//
// When the shell cannot be started or ends under a script on a live
// connection (sudo refused, the script exited), the script runs once more
// as Run, which reports the error the way it always does; a connection
// lost under a script is ErrUnreachable. When ctx ends first, the shell's
// session is closed and the error wraps ErrTimeout: unlike Run, nothing
// on the node kills what the script left running, so Query is for scripts
// that cannot hang (health commands run under their own timeout).
func (p *Pool) Query(ctx context.Context, t Target, prelude, script string) (Result, error) {
	e, err := p.entryFor(t)
	if err != nil {
		return Result{}, err
	}
	t = e.resolved(t)
	c, err := p.acquire(ctx, e)
	if err != nil {
		return Result{}, err
	}
	if !c.shellMu.TryLock() {
		p.release(e)
		return p.Run(ctx, t, OneScript(prelude, script), nil)
	}
	res, err := p.queryOn(ctx, t, c, prelude, script)
	c.shellMu.Unlock()
	ended := errors.Is(err, errShellGone) && ctx.Err() == nil
	lost := ended && !p.alive(c) // asked while c is still busy, so not reaped
	p.release(e)
	switch {
	case lost:
		p.discard(e, c)
		return res, fmt.Errorf("%s: connection lost while the command ran: %w", describe(t), ErrUnreachable)
	case ended, errors.Is(err, errNoShell):
		return p.Run(ctx, t, OneScript(prelude, script), nil)
	}
	return res, err
}

// OneScript is what Query runs, as one script for Run: prelude, script,
// then what script left in dq_out, printed as the resident shell does,
// and script's exit status.
func OneScript(prelude, script string) string {
	return prelude + "\ndq_out=\n" + script + "\ndq_s=$?\nprintf '%s' \"${dq_out-}\"\nexit \"$dq_s\"\n"
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
func (p *Pool) queryOn(ctx context.Context, t Target, c *conn, prelude, script string) (Result, error) {
	if err := p.acquireSlot(ctx); err != nil {
		return Result{}, fmt.Errorf("%s: waiting for a session: %w", describe(t), err)
	}
	defer p.releaseSlot()
	if c.noShell {
		return Result{}, errNoShell
	}
	if c.shell == nil {
		sh, err := startShell(t, c)
		if err != nil {
			return Result{}, errNoShell
		}
		c.shell = sh
	}
	res, err := c.shell.run(ctx, prelude, script, p.maxOutput)
	if err == nil {
		c.answered()
	}
	if err != nil {
		c.noShell = !c.shell.setUp && errors.Is(err, errShellGone) && ctx.Err() == nil
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
	stderr  io.Reader // the shell's own stderr: the first script's
	release func()    // gives the session slot back, once
	// answered: the shell has answered a script. The first script's
	// stderr goes to the session's stderr; shellSetup runs with the
	// second, so a shell that answers only once (a one-shot probe, a cold
	// round) costs the node no process besides the script's own.
	answered bool
	// setUp: the shell has its stderr file on fd 9 (shellSetup ran).
	setUp bool
	// prelude is the last prelude the shell ran.
	prelude string
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

// shellSetup opens, once per shell and before its second script, the
// file that takes each script's stderr: a new file, already unlinked
// (nothing is left on the node however the shell ends), kept open on fd 9
// and reached again through /proc. Where that cannot be done the shell
// exits and Query runs as Run.
//
// The shell's own stderr then goes to /dev/null: every script's goes to
// fd 9, and what is left (the shell's complaints: a syntax error ends the
// shell, and Run reports it) would need a reader kept for the shell's
// whole life, one goroutine per node.
const shellSetup = `dq_e=$(mktemp) && exec 9<>"$dq_e" && rm -f "$dq_e" && [ -e /proc/$$/fd/9 ] || exit 1
exec 2>/dev/null
`

func (sh *residentShell) close() {
	sh.sess.Close()
	sh.release()
}

// errTooMuchOutput: a stream went past the output limit.
var errTooMuchOutput = errors.New("output too large")

// run sends one script, with the prelude when the shell has not run it,
// and reads the answer up to its end marker. The script runs in a brace
// group with stdin from /dev/null and stderr to fd 9's file; then the
// shell prints dq_out and "\n<marker> <status>\n" in one printf, or, when
// the script wrote to stderr, "\n<marker> e\n", the stderr, then the end.
// The shell's first script has no fd 9 yet: its stderr goes to the
// session's stderr, ended there by "\n<marker> 0\n" (see readFirstStderr).
// The marker is random for every script, so no output can fake it. Any
// error leaves the shell in an unknown state: the caller closes it.
func (sh *residentShell) run(ctx context.Context, prelude, script string, limit int) (Result, error) {
	var raw [16]byte
	rand.Read(raw[:])
	marker := hex.EncodeToString(raw[:])
	var head string
	if sh.answered && !sh.setUp {
		head = shellSetup
	}
	if prelude != sh.prelude {
		head += prelude + "\n"
	}
	req := make([]byte, 0, len(head)+len(script)+256)
	req = append(req, head...)
	req = append(req, "dq_out=\n{\n"...)
	req = append(req, script...)
	var firstErr chan stderrFrame
	if !sh.answered {
		firstErr = make(chan stderrFrame, 1)
		go sh.readFirstStderr(marker, limit, firstErr)
		req = append(req, "\n} </dev/null\ndq_s=$?\nprintf '\\n%s 0\\n' "...)
		req = append(req, marker...)
		req = append(req, " >&2\n"...)
	} else {
		req = append(req, "\n} </dev/null 2>/proc/$$/fd/9\ndq_s=$?\nif [ -s /proc/$$/fd/9 ]; then printf '%s\\n%s e\\n' \"$dq_out\" "...)
		req = append(req, marker...)
		req = append(req, "; cat /proc/$$/fd/9; dq_out=; fi\n"...)
	}
	req = append(req, "printf '%s\\n%s %s\\n' \"$dq_out\" "...)
	req = append(req, marker...)
	req = append(req, " \"$dq_s\"\n"...)

	stop := context.AfterFunc(ctx, func() { sh.sess.Close() })
	defer stop()
	if err := writeChunked(sh.stdin, req, shellWriteChunk); err != nil {
		return Result{}, errShellGone // the shell's stdin is closed: it ended
	}
	res, err := readAnswer(sh.stdout, marker, limit)
	if err == nil && firstErr != nil {
		// The shell wrote the stderr's end before the answer, but sshd
		// may forward the two streams in either order. An error closes
		// the session, which ends the reader.
		select {
		case f := <-firstErr:
			res.Stderr, err = f.stderr, f.err
		case <-ctx.Done():
			err = errShellGone
		}
	}
	if err != nil {
		return res, err
	}
	sh.setUp = sh.answered
	sh.answered, sh.prelude = true, prelude
	return res, nil
}

// shellWriteChunk is the most a request is written to the shell's stdin
// at once. x/crypto/ssh keeps, for the connection's life, a channel
// packet and a cipher buffer as large as the largest write: the first
// request carries the prelude (7 kB), and two 7 kB buffers per connection
// were 130 MB of heap at 10,000 nodes; two 2 kB ones still 30 MB. A
// probe's own request (about 1 kB for one component) takes one or two.
const shellWriteChunk = 1 << 10

// writeChunked writes b to w at most n bytes at a time.
func writeChunked(w io.Writer, b []byte, n int) error {
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := w.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

// stderrFrame is the first script's stderr, read from the session's.
type stderrFrame struct {
	stderr []byte
	err    error
}

// readFirstStderr reads the session's stderr up to the first script's
// end marker and sends it on done. Nothing more is read: later scripts'
// stderr goes to fd 9, and the shell's own to /dev/null (shellSetup).
func (sh *residentShell) readFirstStderr(marker string, limit int, done chan<- stderrFrame) {
	res, err := readAnswer(sh.stderr, marker, limit)
	done <- stderrFrame{res.Stdout, err}
}

// readAnswer reads r up to the end of one answer (see run) and splits it.
// Nothing more is read: the shell is silent once it has printed the end.
// It fails with errShellGone when r ends first or the end is not the
// last thing the shell wrote, and errTooMuchOutput past limit bytes.
func readAnswer(r io.Reader, marker string, limit int) (Result, error) {
	sep := []byte("\n" + marker + " ")
	var (
		buf      = make([]byte, 0, 4<<10)
		from     int // no marker starts before this
		errStart = -1
		res      Result
	)
	for {
		for {
			i := bytes.Index(buf[from:], sep)
			if i < 0 {
				from = max(from, len(buf)-len(sep)+1)
				break
			}
			i += from
			j := bytes.IndexByte(buf[i+len(sep):], '\n')
			if j < 0 {
				break // the marker's line is not all here yet
			}
			end := i + len(sep) + j
			tail := string(buf[i+len(sep) : end])
			if tail == "e" && errStart < 0 {
				res.Stdout = buf[:i]
				errStart, from = end+1, end+1
				continue
			}
			if end+1 < len(buf) {
				// Output after the end: something the script started is
				// still writing. The answer is suspect, so is the shell.
				return Result{}, errShellGone
			}
			code, err := strconv.Atoi(tail)
			if err != nil {
				return Result{}, errShellGone
			}
			if errStart < 0 {
				res.Stdout = buf[:i]
			} else {
				res.Stderr = buf[errStart:i]
			}
			if len(res.Stdout) > limit || len(res.Stderr) > limit {
				return Result{}, errTooMuchOutput
			}
			res.ExitCode = code
			return res, nil
		}
		if len(buf) > 2*limit+2*len(sep)+64 {
			return Result{}, errTooMuchOutput
		}
		buf = slices.Grow(buf, 4<<10)
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr != nil && n == 0 {
			return Result{}, errShellGone
		}
	}
}
