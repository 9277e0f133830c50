package wizard

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key states preflight reports.
const (
	KeyKnown   = "known"   // known_hosts holds this key for the host
	KeyUnknown = "unknown" // no key for the host: the operator may accept it
	KeyChanged = "changed" // known_hosts holds another key: refused
	KeyRevoked = "revoked" // marked @revoked: refused
)

// ErrKeyChanged is a host presenting a key other than the one known_hosts
// holds for it; the wizard never replaces a recorded key.
var ErrKeyChanged = errors.New("host key changed")

// knownHostsFile is drover's known_hosts as the wizard reads and appends
// it. Reads parse the file afresh (it is small, and the daemon or an
// operator may have changed it); appends are serialised in this process
// by mu and against other processes (the daemon recording a first-seen
// key) by flock on the file, the same lock inventory takes.
type knownHostsFile struct {
	path string
	mu   sync.Mutex
}

// lookup classifies key for hostport and lists the fingerprints known for
// the host when they differ.
func (k *knownHostsFile) lookup(hostport string, key ssh.PublicKey) (status string, known []string, err error) {
	check, err := k.callback()
	if err != nil {
		return "", nil, err
	}
	return classify(check, hostport, key)
}

func (k *knownHostsFile) callback() (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(k.path); errors.Is(err, fs.ErrNotExist) {
		return knownhosts.New()
	}
	cb, err := knownhosts.New(k.path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", k.path, err)
	}
	return cb, nil
}

func classify(check ssh.HostKeyCallback, hostport string, key ssh.PublicKey) (string, []string, error) {
	err := check(hostport, fakeAddr(hostport), key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return KeyKnown, nil, nil
	case errors.As(err, &revoked):
		return KeyRevoked, nil, nil
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		known := make([]string, 0, len(keyErr.Want))
		for _, w := range keyErr.Want {
			known = append(known, w.Key.Type()+" "+ssh.FingerprintSHA256(w.Key))
		}
		return KeyChanged, known, nil
	case errors.As(err, &keyErr):
		return KeyUnknown, nil, nil
	default:
		return "", nil, err
	}
}

// knownTypes lists the key types known_hosts holds for hostport, so the
// handshake can ask for one of them first.
func (k *knownHostsFile) knownTypes(hostport string) []string {
	check, err := k.callback()
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(check(hostport, fakeAddr(hostport), zeroKey()), &keyErr) {
		return nil
	}
	var types []string
	for _, w := range keyErr.Want {
		types = append(types, w.Key.Type())
	}
	return types
}

// accept appends key for hostport. It is append-only: an existing line is
// never rewritten, the line goes out in one write(2) on an O_APPEND file
// (so a reader sees all of it or none) and is fsynced. Under the lock the
// file is read again: a key already there is success, a different key for
// the host is ErrKeyChanged. added is false when the key was already known.
func (k *knownHostsFile) accept(hostport string, key ssh.PublicKey) (added bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return false, fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(k.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("known_hosts: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("lock %s: %w", k.path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	check, err := k.callback()
	if err != nil {
		return false, err
	}
	status, known, err := classify(check, hostport, key)
	switch {
	case err != nil:
		return false, err
	case status == KeyKnown:
		return false, nil
	case status == KeyChanged:
		return false, fmt.Errorf("%w: %s presents %s %s but %s holds %v; remove the old key (ssh-keygen -R) only after checking the new one on the node",
			ErrKeyChanged, hostport, key.Type(), ssh.FingerprintSHA256(key), k.path, known)
	case status == KeyRevoked:
		return false, fmt.Errorf("%s: key %s is marked @revoked in %s", hostport, ssh.FingerprintSHA256(key), k.path)
	}
	line := []byte(knownhosts.Line([]string{hostport}, key) + "\n")
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		return false, fmt.Errorf("append to %s: %w", k.path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("sync %s: %w", k.path, err)
	}
	return true, nil
}

// zeroKey is a key no known_hosts holds: checking it lists the host's
// known keys, as knownhosts has no lookup of its own.
func zeroKey() ssh.PublicKey {
	k, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	return k
}

// fakeAddr stands in for the remote address when checking a key offline.
type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
