package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// NewSigner makes a fresh ed25519 key.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: signer: %v", err)
	}
	return s
}

// ClientKey is a private key written to disk for a client to load.
type ClientKey struct {
	Signer ssh.Signer
	Path   string
	// Private is the raw key (ed25519.PrivateKey), e.g. to add to an agent.
	Private any
}

// WriteClientKey writes a fresh ed25519 key in OpenSSH format to
// dir/name with mode 0600, encrypted when passphrase is not empty.
func WriteClientKey(t testing.TB, dir, name, passphrase string) ClientKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: signer: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "sshtest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "sshtest", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("sshtest: marshal key: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshtest: write key: %v", err)
	}
	return ClientKey{Signer: signer, Path: path, Private: priv}
}

// KnownHostsLine is the known_hosts line for addr (host:port) and key.
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{addr}, key)
}

// KnownHostsLine is the known_hosts line for this server's first host key.
func (s *Server) KnownHostsLine() string { return KnownHostsLine(s.Addr(), s.HostKey()) }

// WriteKnownHosts appends the servers' lines to the known_hosts file at
// path, creating it.
func WriteKnownHosts(t testing.TB, path string, servers ...*Server) {
	t.Helper()
	lines := make([]string, 0, len(servers))
	for _, s := range servers {
		lines = append(lines, s.KnownHostsLine())
	}
	AppendKnownHosts(t, path, lines...)
}

// AppendKnownHosts appends raw lines to the known_hosts file at path.
func AppendKnownHosts(t testing.TB, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("sshtest: known_hosts: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatalf("sshtest: known_hosts: %v", err)
	}
}

// Fixture is a server with a client key it accepts and a known_hosts
// file that trusts it, all in one temp dir.
type Fixture struct {
	Server     *Server
	Key        ClientKey
	KnownHosts string
}

// Setup starts a server that authorizes a fresh client key and writes
// that key and a known_hosts file for the server into a temp dir. Keys
// already in opts.AuthorizedKeys stay authorized.
func Setup(t testing.TB, opts Options) Fixture {
	t.Helper()
	dir := t.TempDir()
	key := WriteClientKey(t, dir, "id_ed25519", "")
	opts.AuthorizedKeys = append(opts.AuthorizedKeys, key.Signer.PublicKey())
	s := Start(t, opts)
	kh := filepath.Join(dir, "known_hosts")
	WriteKnownHosts(t, kh, s)
	return Fixture{Server: s, Key: key, KnownHosts: kh}
}
