package wizard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// errNotTrusted ends a handshake whose host key known_hosts does not hold
// (yet): the key is recorded for the operator to confirm, and nothing is
// sent to a host that is not trusted, credentials included.
var errNotTrusted = errors.New("host key not trusted yet")

// visit is what one connection to a node learnt.
type visit struct {
	dialErr      error // TCP connection failed
	key          ssh.PublicKey
	keyStatus    string
	knownKeys    []string
	keyErr       error  // known_hosts could not be read
	handshakeErr error  // SSH failed for another reason than the host key
	authErr      error  // login refused
	runErr       error  // the facts session failed
	sudoErr      error  // sudo -n wants a password
	stdout       []byte // after the clock readings
	stderr       []byte
	exitCode     int
	clock        []clockSample
}

// preferredHostKeyAlgos is what a host with no known key is asked for:
// ed25519, then ECDSA, then RSA with SHA-2.
var preferredHostKeyAlgos = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// hostKeyAlgos asks first for the key types known for the host, so that
// a host whose RSA key is recorded does not look unknown by offering ed25519.
func hostKeyAlgos(known []string) []string {
	var out []string
	add := func(a string) {
		for _, x := range out {
			if x == a {
				return
			}
		}
		out = append(out, a)
	}
	for _, t := range known {
		if t == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
			continue
		}
		add(t)
	}
	for _, a := range preferredHostKeyAlgos {
		add(a)
	}
	return out
}

// visitNode connects to t once: the handshake records the host key and
// goes on only when known_hosts holds it; then one session runs script.
func (w *Wizard) visitNode(ctx context.Context, t inventory.Target, auth []ssh.AuthMethod, script string) visit {
	var v visit
	hostport := t.HostPort()
	dctx, cancel := context.WithTimeout(ctx, w.opts.ConnectTimeout)
	nc, err := w.opts.Dial(dctx, "tcp", hostport)
	cancel()
	if err != nil {
		v.dialErr = err
		return v
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: auth,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			v.key = key
			v.keyStatus, v.knownKeys, v.keyErr = w.knownHosts.lookup(hostport, key)
			if v.keyErr != nil {
				return v.keyErr
			}
			if v.keyStatus != KeyKnown {
				return errNotTrusted
			}
			return nil
		},
		HostKeyAlgorithms: hostKeyAlgos(w.knownHosts.knownTypes(hostport)),
	}
	// The handshake gets its own ConnectTimeout, as inventory's dial does
	// (a deadline, not a clock reading: never Options.Now).
	_ = nc.SetDeadline(time.Now().Add(w.opts.ConnectTimeout))
	sc, chans, reqs, err := ssh.NewClientConn(nc, hostport, cfg)
	if err != nil {
		switch {
		case v.key != nil && (v.keyStatus != KeyKnown || v.keyErr != nil):
			// The host key check stopped it; that is reported on its own.
		case strings.Contains(err.Error(), "unable to authenticate"):
			v.authErr = err
		default:
			v.handshakeErr = err
		}
		return v
	}
	_ = nc.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()

	sess, err := client.NewSession()
	if err != nil {
		v.runErr = fmt.Errorf("open session: %w", err)
		return v
	}
	defer sess.Close()
	cmd := "exec sh -c " + inventory.Quote(script)
	if t.User != "root" {
		cmd = "exec sudo -n sh -c " + inventory.Quote(script)
	}
	v.runErr = w.runFacts(sess, cmd, &v)
	if t.User != "root" && strings.Contains(string(v.stderr), "sudo: a password is required") {
		v.sudoErr = fmt.Errorf("sudo -n asks %s for a password: drover needs passwordless sudo", t.User)
	}
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

// loadAuth reads the identity file the operator named, and the ssh-agent's
// keys when SSH_AUTH_SOCK is set, for one preflight run. The signers are
// dropped when it ends; close releases the agent connection.
func loadAuth(identityFile string) (methods []ssh.AuthMethod, closeFn func(), err error) {
	closeFn = func() {}
	var agentSigners func() ([]ssh.Signer, error)
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			ag := agent.NewClient(conn)
			agentSigners = ag.Signers
			closeFn = func() { conn.Close() }
		}
	}
	var signers []ssh.Signer
	if identityFile != "" {
		data, err := manifests.ReadRegular(identityFile, 1<<20)
		if err != nil {
			closeFn()
			return nil, func() {}, fmt.Errorf("identity file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(data)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing) && agentSigners != nil:
			// The agent holds the unlocked key, or the login fails and says so.
		case errors.As(err, &missing):
			closeFn()
			return nil, func() {}, fmt.Errorf("identity file %s is protected by a passphrase: add it to ssh-agent (ssh-add) and start drover with SSH_AUTH_SOCK set", identityFile)
		case err != nil:
			closeFn()
			return nil, func() {}, fmt.Errorf("identity file %s: %w", identityFile, err)
		default:
			signers = append(signers, signer)
		}
	}
	if len(signers) == 0 && agentSigners == nil {
		return nil, func() {}, errors.New("no SSH key: give an identity file, or run ssh-agent with SSH_AUTH_SOCK set")
	}
	methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		all := append([]ssh.Signer(nil), signers...)
		if agentSigners != nil {
			if more, err := agentSigners(); err == nil {
				all = append(all, more...)
			}
		}
		return all, nil
	}))
	return methods, closeFn, nil
}
