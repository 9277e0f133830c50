package inventory

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drover-project/drover/manifests"
)

// hostKeys checks host keys against one known_hosts file, re-reading it
// when it changes on disk, and records first-seen keys when allowed.
type hostKeys struct {
	path      string
	acceptNew bool
	log       *zap.Logger

	mu      sync.Mutex // guards the cache below and serialises appends
	check   ssh.HostKeyCallback
	modTime time.Time
	size    int64
	exists  bool
}

func newHostKeys(path string, acceptNew bool, log *zap.Logger) (*hostKeys, error) {
	h := &hostKeys{path: path, acceptNew: acceptNew, log: log}
	if _, err := h.callback(); err != nil {
		return nil, err
	}
	return h, nil
}

// callback returns the checker for the file as it is now. Callers must
// not hold h.mu.
func (h *hostKeys) callback() (ssh.HostKeyCallback, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.callbackLocked()
}

func (h *hostKeys) callbackLocked() (ssh.HostKeyCallback, error) {
	st, err := os.Stat(h.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if h.check == nil || h.exists {
			empty, err := knownhosts.New()
			if err != nil {
				return nil, err
			}
			h.check, h.exists = empty, false
		}
		return h.check, nil
	case err != nil:
		return nil, fmt.Errorf("known_hosts %s: %w", h.path, err)
	}
	if h.check != nil && h.exists && st.ModTime().Equal(h.modTime) && st.Size() == h.size {
		return h.check, nil
	}
	// knownhosts opens the file by name: a FIFO there would block it.
	if err := manifests.CheckRegular(h.path); err != nil {
		return nil, fmt.Errorf("known_hosts %w", err)
	}
	check, err := knownhosts.New(h.path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", h.path, err)
	}
	h.check, h.modTime, h.size, h.exists = check, st.ModTime(), st.Size(), true
	return check, nil
}

// probeKey is a key no known_hosts file holds (all zero bytes): checking
// it lists the keys recorded for a host, as knownhosts has no lookup.
func probeKey() ssh.PublicKey {
	k, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	return k
}

// known lists the keys known_hosts holds for hostport.
func (h *hostKeys) known(hostport string) []knownhosts.KnownKey {
	check, err := h.callback()
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if errors.As(check(hostport, fakeAddr(hostport), probeKey()), &keyErr) {
		return keyErr.Want
	}
	return nil
}

// preferredHostKeyAlgos is the order offered to a host with no known key:
// ed25519 first, then ECDSA, then RSA with SHA-2 (never SHA-1).
var preferredHostKeyAlgos = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// algorithms orders host key algorithms so that the types already known
// for hostport come first: the server then presents a key we can check,
// instead of another type that would look "unknown".
func (h *hostKeys) algorithms(hostport string) []string {
	var algos []string
	add := func(a string) {
		for _, x := range algos {
			if x == a {
				return
			}
		}
		algos = append(algos, a)
	}
	for _, k := range h.known(hostport) {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	for _, a := range preferredHostKeyAlgos {
		add(a)
	}
	return algos
}

// verifier is the HostKeyCallback for one node; the error it returned
// is kept so the caller can report it without the handshake's wrapping.
type verifier struct {
	h        *hostKeys
	node     string // for messages: "node m1" or "bastion"
	hostport string
	err      error
}

func (v *verifier) verify(_ string, remote net.Addr, key ssh.PublicKey) error {
	v.err = v.h.verify(v.node, v.hostport, remote, key)
	return v.err
}

func (h *hostKeys) verify(node, hostport string, remote net.Addr, key ssh.PublicKey) error {
	check, err := h.callback()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHostKey, err)
	}
	err = check(hostport, remote, key)
	if err == nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &revoked):
		return fmt.Errorf("%w: %s key %s is marked @revoked in %s", ErrHostKey, key.Type(), ssh.FingerprintSHA256(key), revoked.Revoked.String())
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return h.changedError(node, hostport, key, keyErr.Want)
	case errors.As(err, &keyErr) && h.acceptNew:
		return h.record(node, hostport, remote, key)
	case errors.As(err, &keyErr):
		return h.unknownError(hostport, key)
	default:
		return fmt.Errorf("%w: %v", ErrHostKey, err)
	}
}

func (h *hostKeys) unknownError(hostport string, key ssh.PublicKey) error {
	host, port, _ := net.SplitHostPort(hostport)
	where := h.path
	if _, err := os.Stat(h.path); errors.Is(err, fs.ErrNotExist) {
		where += " (which does not exist)"
	}
	return fmt.Errorf("%w: %s key %s is not in known_hosts file %s; check the fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then add it with `ssh-keyscan -p %s -t %s %s >> %s`, or set ssh.acceptNewHostKeys: true to record first-seen keys",
		ErrHostKey, key.Type(), ssh.FingerprintSHA256(key), where,
		keyFileKind(key), port, keyFileKind(key), host, h.path)
}

func (h *hostKeys) changedError(node, hostport string, key ssh.PublicKey, want []knownhosts.KnownKey) error {
	known := make([]string, 0, len(want))
	for _, k := range want {
		known = append(known, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	host := knownhosts.Normalize(hostport)
	return fmt.Errorf("%w: host key CHANGED: %s presents %s key %s but known_hosts has %s; this may be a man-in-the-middle attack. If %s was reinstalled, verify the new key and remove the old one with `ssh-keygen -R '%s' -f %s`",
		ErrHostKey, node, key.Type(), ssh.FingerprintSHA256(key), strings.Join(known, ", "), node, host, h.path)
}

// record appends a first-seen key to the known_hosts file. The file is
// created 0600 in a 0700 dir, locked (flock) against other drover
// processes, and re-read under the lock: another writer may have just
// recorded this host, possibly with a different key.
func (h *hostKeys) record(node, hostport string, remote net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return fmt.Errorf("%w: record new key: %v", ErrHostKey, err)
	}
	f, err := os.OpenFile(h.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: record new key: %v", ErrHostKey, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("%w: lock %s: %v", ErrHostKey, h.path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	h.check = nil // force a re-read
	check, err := h.callbackLocked()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHostKey, err)
	}
	var keyErr *knownhosts.KeyError
	switch err := check(hostport, remote, key); {
	case err == nil:
		return nil
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return h.changedError(node, hostport, key, keyErr.Want)
	}

	line := knownhosts.Line([]string{hostport}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 && !endsWithNewline(f, st.Size()) {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("%w: record new key in %s: %v", ErrHostKey, h.path, err)
	}
	h.check = nil
	h.log.Info("recorded new host key",
		zap.String("target", node), zap.String("address", hostport),
		zap.String("type", key.Type()), zap.String("fingerprint", ssh.FingerprintSHA256(key)),
		zap.String("file", h.path))
	return nil
}

func endsWithNewline(f *os.File, size int64) bool {
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// keyFileKind is the name sshd gives the key's host key file and
// ssh-keyscan's -t value.
func keyFileKind(key ssh.PublicKey) string {
	switch t := key.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ecdsa"
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	default:
		return t
	}
}

// fakeAddr stands in for the remote address when probing known keys.
type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
