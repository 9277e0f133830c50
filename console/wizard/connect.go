package wizard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/inventory"
)

// Host key states preflight reports: inventory's.
const (
	KeyKnown   = inventory.KeyKnown
	KeyUnknown = inventory.KeyUnknown
	KeyChanged = inventory.KeyChanged
	KeyRevoked = inventory.KeyRevoked
)

// visit is what one connection to a node learnt.
type visit struct {
	connErr     error         // no SSH connection (TCP, handshake, a jump host on the way)
	key         ssh.PublicKey // the host key that stopped or passed the handshake
	keyHostPort string        // whose key: the node's, or a jump host's on its route
	keyStatus   string
	knownKeys   []string
	authErr     error  // login refused, or the keys could not be loaded
	runErr      error  // the facts session failed
	sudoErr     error  // sudo -n wants a password
	stdout      []byte // after the clock readings
	stderr      []byte
	exitCode    int
	clock       []clockSample
}

// visitNode opens one session on t through the pool, which checks every
// host key on the route against known_hosts and sends nothing to a host
// whose key it does not hold; then the session runs script.
func (w *Wizard) visitNode(ctx context.Context, pool *inventory.Pool, t inventory.Target, script string) visit {
	var v visit
	sess, err := pool.Session(ctx, t)
	var hostKeyErr *inventory.HostKeyError
	switch {
	case errors.As(err, &hostKeyErr):
		v.key, v.keyHostPort, v.keyStatus, v.knownKeys = hostKeyErr.Key, hostKeyErr.HostPort, hostKeyErr.Status, hostKeyErr.Known
		return v
	case errors.Is(err, inventory.ErrAuth):
		v.authErr = err
		return v
	case err != nil:
		v.connErr = err
		return v
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	v.key, v.keyHostPort, v.keyStatus = sess.HostKey, sess.Target.HostPort(), KeyKnown
	v.runErr = w.runFacts(sess.Session, sess.Command(script), &v)
	v.sudoErr = sess.SudoRefused(v.stderr, v.exitCode)
	return v
}

// runFacts runs the facts script in sess: it reads the magic line, then
// takes the clock readings, each one asked for by a newline on stdin and
// timed on our side, then the rest of the output. A non-zero exit is
// v.exitCode, not an error.
func (w *Wizard) runFacts(sess *ssh.Session, cmd string, v *visit) error {
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	sess.Stderr = &limitedBuffer{b: &stderr, max: 64 << 10}
	if err := sess.Start(cmd); err != nil {
		return fmt.Errorf("start the preflight script: %w", err)
	}
	out := bufio.NewReader(io.LimitReader(stdout, maxFactsOutput))
	readErr := func() error {
		first, err := out.ReadString('\n')
		if err != nil || strings.TrimSpace(first) != factsMagic {
			return fmt.Errorf("not preflight output (want %q first, got %q)", factsMagic, strings.TrimSpace(first))
		}
		for range clockSamples {
			sent := w.opts.Now()
			if _, err := io.WriteString(stdin, "\n"); err != nil {
				return fmt.Errorf("clock reading: %w", err)
			}
			line, err := out.ReadString('\n')
			received := w.opts.Now()
			if err != nil {
				return fmt.Errorf("clock reading: %w", err)
			}
			node, err := parseClock(line)
			if err != nil {
				return fmt.Errorf("clock reading: %w", err)
			}
			v.clock = append(v.clock, clockSample{sent: sent, node: node, received: received})
		}
		stdin.Close()
		rest, err := io.ReadAll(out)
		v.stdout = rest
		return err
	}()
	stdin.Close()
	if readErr != nil {
		_, _ = io.Copy(io.Discard, out) // let the command end so Wait returns
	}
	err = sess.Wait()
	v.stderr = stderr.Bytes()
	var exit *ssh.ExitError
	switch {
	case errors.As(err, &exit):
		v.exitCode = exit.ExitStatus()
		if readErr != nil {
			return nil // the exit code and stderr say more
		}
	case err != nil:
		return err
	}
	return readErr
}

// maxFactsOutput bounds what the facts script may print (a node with a
// huge socket table still fits).
const maxFactsOutput = 8 << 20

// limitedBuffer keeps at most max bytes and drops the rest, so a runaway
// node cannot exhaust the daemon's memory.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
