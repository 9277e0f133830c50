package inventory

import (
	"bytes"
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
	// index is the file's keys by host, when every line names plain
	// hosts (indexKnownHosts); nil otherwise. Read under mu.
	index map[hostAddr][]knownhosts.KnownKey
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
			h.check, h.exists, h.index = empty, false, nil
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
	h.index = nil
	if data, err := os.ReadFile(h.path); err == nil {
		h.index = indexKnownHosts(data, h.path)
	}
	h.check, h.modTime, h.size, h.exists = check, st.ModTime(), st.Size(), true
	return check, nil
}

// hostAddr is a host and port as known_hosts patterns name them.
type hostAddr struct{ host, port string }

// indexKnownHosts lists a known_hosts file's keys by the host and port
// each line names, in line order, as x/crypto's checker lists them for a
// host (KeyError.Want): that checker has no lookup and scans every line,
// which at 10,000 hosts was a fifth of the daemon's cold start, as the
// pool asks it once a handshake for the key types to prefer. Only for a
// file whose every host pattern is a plain name or address: with a
// wildcard, a negation, a hashed name or a line that does not parse it
// is nil, and the checker is asked. The index only orders the
// algorithms offered; the checker alone verifies a key.
func indexKnownHosts(data []byte, filename string) map[hostAddr][]knownhosts.KnownKey {
	idx := map[hostAddr][]knownhosts.KnownKey{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil {
			return nil
		}
		if marker == "revoked" {
			continue // not a host's key: the checker refuses it for every host
		}
		seen := map[hostAddr]bool{}
		for _, p := range hosts {
			if p == "" || strings.ContainsAny(p, "*?!") || p[0] == '|' {
				return nil
			}
			a, err := patternAddr(p)
			if err != nil {
				return nil
			}
			if !seen[a] {
				seen[a] = true
				idx[a] = append(idx[a], knownhosts.KnownKey{Key: key, Filename: filename, Line: i + 1})
			}
		}
	}
	return idx
}

// patternAddr is the host and port a plain known_hosts pattern names:
// [host]:port, host:port, or a host alone for port 22.
func patternAddr(p string) (hostAddr, error) {
	host, port, err := net.SplitHostPort(p)
	switch {
	case err == nil:
		return hostAddr{host, port}, nil
	case p[0] == '[':
		return hostAddr{}, err
	default:
		return hostAddr{p, "22"}, nil
	}
}

// probeKey is a key no known_hosts file holds (all zero bytes): checking
// it lists the keys recorded for a host, as knownhosts has no lookup.
func probeKey() ssh.PublicKey {
	k, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	return k
}

// known lists the keys known_hosts holds for hostport.
func (h *hostKeys) known(hostport string) []knownhosts.KnownKey {
	h.mu.Lock()
	check, err := h.callbackLocked()
	index := h.index
	h.mu.Unlock()
	if err != nil {
		return nil
	}
	if index != nil {
		if host, port, err := net.SplitHostPort(hostport); err == nil {
			return index[hostAddr{host, port}]
		}
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
	key      ssh.PublicKey // what the host presented
	err      error
}

func (v *verifier) verify(_ string, remote net.Addr, key ssh.PublicKey) error {
	v.key = key
	v.err = v.h.verify(v.node, v.hostport, remote, key)
	return v.err
}

func (h *hostKeys) verify(node, hostport string, remote net.Addr, key ssh.PublicKey) error {
	check, err := h.callback()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHostKey, err)
	}
	status, want, err := classify(check, hostport, remote, key)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrHostKey, err)
	case status == KeyKnown:
		return nil
	case status == KeyUnknown && h.acceptNew:
		_, err := h.record(node, hostport, key)
		return err
	}
	return h.refusal(node, hostport, key, status, want)
}

// Host key states, as a known_hosts file has them for a host.
const (
	KeyKnown   = "known"   // the file holds this key for the host
	KeyUnknown = "unknown" // no key for the host
	KeyChanged = "changed" // the file holds another key: refused
	KeyRevoked = "revoked" // marked @revoked: refused
)

// HostKeyError is a host key refused: unknown (and not to be recorded),
// changed or revoked. It wraps ErrHostKey and carries what the host
// presented, for a caller that shows it to an operator to confirm.
type HostKeyError struct {
	HostPort string
	Key      ssh.PublicKey
	Status   string   // KeyUnknown, KeyChanged or KeyRevoked
	Known    []string // for a changed key: "type SHA256:..." of each key the file holds
	msg      string
}

func (e *HostKeyError) Error() string { return ErrHostKey.Error() + ": " + e.msg }
func (e *HostKeyError) Unwrap() error { return ErrHostKey }

// classify checks key for hostport; want lists the keys the file holds
// for the host when they differ.
func classify(check ssh.HostKeyCallback, hostport string, remote net.Addr, key ssh.PublicKey) (string, []knownhosts.KnownKey, error) {
	err := check(hostport, remote, key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return KeyKnown, nil, nil
	case errors.As(err, &revoked):
		return KeyRevoked, nil, nil
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return KeyChanged, keyErr.Want, nil
	case errors.As(err, &keyErr):
		return KeyUnknown, nil, nil
	default:
		return "", nil, err
	}
}

// refusal is the HostKeyError for a key that is not known.
func (h *hostKeys) refusal(node, hostport string, key ssh.PublicKey, status string, want []knownhosts.KnownKey) error {
	e := &HostKeyError{HostPort: hostport, Key: key, Status: status}
	for _, k := range want {
		e.Known = append(e.Known, k.Key.Type()+" "+ssh.FingerprintSHA256(k.Key))
	}
	switch status {
	case KeyRevoked:
		e.msg = fmt.Sprintf("%s key %s is marked @revoked in %s", key.Type(), ssh.FingerprintSHA256(key), h.path)
	case KeyChanged:
		known := make([]string, 0, len(want))
		for _, k := range want {
			known = append(known, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		e.msg = fmt.Sprintf("host key CHANGED: %s presents %s key %s but known_hosts has %s; this may be a man-in-the-middle attack. If %s was reinstalled, verify the new key and remove the old one with `ssh-keygen -R '%s' -f %s`",
			node, key.Type(), ssh.FingerprintSHA256(key), strings.Join(known, ", "), node, knownhosts.Normalize(hostport), h.path)
	default:
		host, port, _ := net.SplitHostPort(hostport)
		where := h.path
		if _, err := os.Stat(h.path); errors.Is(err, fs.ErrNotExist) {
			where += " (which does not exist)"
		}
		e.msg = fmt.Sprintf("%s key %s is not in known_hosts file %s; check the fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then add it with `ssh-keyscan -p %s -t %s %s >> %s`, or set ssh.acceptNewHostKeys: true to record first-seen keys",
			key.Type(), ssh.FingerprintSHA256(key), where, KeyFileKind(key), port, KeyFileKind(key), host, h.path)
	}
	return e
}

// record appends a first-seen key to the known_hosts file. It is
// append-only: the file is created 0600 in a 0700 dir, locked (flock)
// against other drover processes (the daemon, the setup wizard), and
// re-read under the lock, as another writer may have just recorded this
// host, possibly with another key (refused). The line goes out in one
// write(2) on an O_APPEND file, so a reader sees all of it or none, and
// is fsynced. added is false when the key was already there.
func (h *hostKeys) record(node, hostport string, key ssh.PublicKey) (added bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return false, fmt.Errorf("%w: record new key: %v", ErrHostKey, err)
	}
	f, err := os.OpenFile(h.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("%w: record new key: %v", ErrHostKey, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("%w: lock %s: %v", ErrHostKey, h.path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	h.check = nil // force a re-read
	check, err := h.callbackLocked()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrHostKey, err)
	}
	switch status, want, err := classify(check, hostport, fakeAddr(hostport), key); {
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrHostKey, err)
	case status == KeyKnown:
		return false, nil
	case status != KeyUnknown:
		return false, h.refusal(node, hostport, key, status, want)
	}

	line := knownhosts.Line([]string{hostport}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 && !endsWithNewline(f, st.Size()) {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return false, fmt.Errorf("%w: record new key in %s: %v", ErrHostKey, h.path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("%w: sync %s: %v", ErrHostKey, h.path, err)
	}
	h.check = nil
	h.log.Info("recorded new host key",
		zap.String("target", node), zap.String("address", hostport),
		zap.String("type", key.Type()), zap.String("fingerprint", ssh.FingerprintSHA256(key)),
		zap.String("file", h.path))
	return true, nil
}

func endsWithNewline(f *os.File, size int64) bool {
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// KeyFileKind is the name sshd gives the key's host key file
// (/etc/ssh/ssh_host_KIND_key) and ssh-keyscan's -t value.
func KeyFileKind(key ssh.PublicKey) string {
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

// KnownHosts is one known_hosts file as the pool reads and records it,
// for callers that show host keys to an operator (the setup wizard).
type KnownHosts struct{ h *hostKeys }

// OpenKnownHosts reads path (a missing file is empty).
func OpenKnownHosts(path string, log *zap.Logger) (*KnownHosts, error) {
	if log == nil {
		log = zap.NewNop()
	}
	h, err := newHostKeys(path, false, log)
	if err != nil {
		return nil, err
	}
	return &KnownHosts{h: h}, nil
}

// Path is the file.
func (k *KnownHosts) Path() string { return k.h.path }

// Lookup classifies key for hostport: KeyKnown, KeyUnknown, KeyChanged
// (known lists the file's keys for the host) or KeyRevoked.
func (k *KnownHosts) Lookup(hostport string, key ssh.PublicKey) (status string, known []string, err error) {
	check, err := k.h.callback()
	if err != nil {
		return "", nil, err
	}
	status, want, err := classify(check, hostport, fakeAddr(hostport), key)
	for _, w := range want {
		known = append(known, w.Key.Type()+" "+ssh.FingerprintSHA256(w.Key))
	}
	return status, known, err
}

// Record appends key for hostport, as the pool records a first-seen key
// (see hostKeys.record). A different key already recorded for the host
// is a *HostKeyError with Status KeyChanged; added is false when the key
// was already there.
func (k *KnownHosts) Record(hostport string, key ssh.PublicKey) (added bool, err error) {
	return k.h.record(hostport, hostport, key)
}
