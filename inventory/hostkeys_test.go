package inventory

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drover-project/drover/internal/sshtest"
)

func TestUnknownHostKeyRefused(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts") // does not exist
	p := newPool(t, cfg)
	_, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "true", nil)
	wantErr(t, err, ErrHostKey, "hostkey")
	for _, want := range []string{ssh.FingerprintSHA256(f.Server.HostKey()), "ssh-ed25519", cfg.KnownHostsFile, "acceptNewHostKeys", "n1", f.Server.Addr()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(cfg.KnownHostsFile); !os.IsNotExist(err) {
		t.Errorf("strict mode created the known_hosts file: %v", err)
	}
	if f.Server.Stats().Authenticated != 0 {
		t.Error("client authenticated to a server it did not trust")
	}
}

func TestChangedHostKeyRefusedEvenWithAcceptNew(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	old := sshtest.NewSigner(t).PublicKey()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshtest.AppendKnownHosts(t, kh, sshtest.KnownHostsLine(f.Server.Addr(), old))
	before, _ := os.ReadFile(kh)

	cfg := baseConfig(f)
	cfg.KnownHostsFile = kh
	cfg.AcceptNewHostKeys = true
	p := newPool(t, cfg)
	_, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "true", nil)
	wantErr(t, err, ErrHostKey, "hostkey")
	for _, want := range []string{"CHANGED", ssh.FingerprintSHA256(f.Server.HostKey()), ssh.FingerprintSHA256(old), kh} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if after, _ := os.ReadFile(kh); string(after) != string(before) {
		t.Errorf("known_hosts changed:\n%s", after)
	}
}

func TestAcceptNewRecordsKeyThenTrustsIt(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	dir := filepath.Join(t.TempDir(), "state", "ssh")
	kh := filepath.Join(dir, "known_hosts")
	cfg := baseConfig(f)
	cfg.KnownHostsFile = kh
	cfg.AcceptNewHostKeys = true
	p := newPool(t, cfg)
	mustRun(t, p, targetOf(f.Server, "n1"), "true")

	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.Server.KnownHostsLine() + "\n"; string(data) != want {
		t.Errorf("known_hosts = %q, want %q", data, want)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}

	// A strict pool now trusts the recorded key.
	cfg.AcceptNewHostKeys = false
	strict := newPool(t, cfg)
	mustRun(t, strict, targetOf(f.Server, "n1"), "true")
}

func TestAcceptNewConcurrentNodes(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	servers := []*sshtest.Server{f.Server}
	for range 5 {
		servers = append(servers, sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{f.Key.Signer.PublicKey()}}))
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte("# no trailing newline"), 0o600)
	cfg := baseConfig(f)
	cfg.KnownHostsFile = kh
	cfg.AcceptNewHostKeys = true
	p := newPool(t, cfg)
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Run(ctxT(t), targetOf(s, "n"+string(rune('a'+i))), "true", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	check, err := knownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if err := check(s.Addr(), fakeAddr(s.Addr()), s.HostKey()); err != nil {
			t.Errorf("%s not recorded: %v", s.Addr(), err)
		}
	}
	data, _ := os.ReadFile(kh)
	if lines := strings.Count(string(data), "\n"); lines != len(servers)+1 {
		t.Errorf("known_hosts has %d lines, want %d:\n%s", lines, len(servers)+1, data)
	}
}

// A server with ed25519 and ECDSA host keys, of which known_hosts has only
// the ECDSA one: the ECDSA algorithm must be offered first, or the server
// would present its ed25519 key and look changed.
func TestKnownHostKeyTypeIsOfferedFirst(t *testing.T) {
	noAgent(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := ssh.NewSignerFromKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	edSigner := sshtest.NewSigner(t)
	key := sshtest.WriteClientKey(t, t.TempDir(), "id", "")
	s := sshtest.Start(t, sshtest.Options{
		HostKeys:       []ssh.Signer{edSigner, ecSigner},
		AuthorizedKeys: []ssh.PublicKey{key.Signer.PublicKey()},
	})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshtest.AppendKnownHosts(t, kh, sshtest.KnownHostsLine(s.Addr(), ecSigner.PublicKey()))
	p := newPool(t, Config{IdentityFiles: []string{key.Path}, KnownHostsFile: kh})

	if got := p.hosts["false"+kh].algorithms(s.Addr())[0]; got != ssh.KeyAlgoECDSA256 {
		t.Errorf("first algorithm %s, want %s", got, ssh.KeyAlgoECDSA256)
	}
	if got := p.hosts["false"+kh].algorithms("127.0.0.1:1")[0]; got != ssh.KeyAlgoED25519 {
		t.Errorf("unknown host: first algorithm %s, want ed25519", got)
	}
	mustRun(t, p, targetOf(s, "n1"), "true")
}

func TestRSAKnownKeyOffersSHA2(t *testing.T) {
	h := &hostKeys{path: filepath.Join(t.TempDir(), "known_hosts")}
	// A real RSA public key line (from ssh-keygen), for host example:2222.
	line := "[example]:2222 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9Ue7v6Y5mcHrhmm3F3x3Px6WJcN5GtT6VqsAQFYmKg5o/QQ6oDwbV8eWQvS1hPzYxlA4y8AbO5dIMzj4XGHuGdY3E0Z0rM1z3UdGPaQ7hQqvWd+gS6q9wjvG7hYxL4jKZpTgl4ZbU2l1f2C5l9XWcV0dU7k3NhDQm8I0yD7H1Gw=="
	os.WriteFile(h.path, []byte(line+"\n"), 0o600)
	got := h.algorithms("example:2222")
	if got[0] != ssh.KeyAlgoRSASHA512 || got[1] != ssh.KeyAlgoRSASHA256 || got[2] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms %v", got)
	}
	for _, a := range got {
		if a == ssh.KeyAlgoRSA {
			t.Errorf("SHA-1 ssh-rsa offered: %v", got)
		}
	}
}

// TestKnownHostsIndexListsWhatTheCheckerLists: the index of a file of
// plain host patterns gives every host the keys x/crypto's checker
// lists for it, in its order; a file with a pattern the index does not
// read (a wildcard, a negation, a hashed name) is left to the checker.
func TestKnownHostsIndexListsWhatTheCheckerLists(t *testing.T) {
	ed1, ed2, ed3 := sshtest.NewSigner(t).PublicKey(), sshtest.NewSigner(t).PublicKey(), sshtest.NewSigner(t).PublicKey()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ssh.NewPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.Join([]string{
		"# a comment",
		knownhosts.Line([]string{"10.0.0.1:22", "n1.example:22"}, ed1),
		"",
		knownhosts.Line([]string{"10.0.0.1:22"}, ec),
		knownhosts.Line([]string{"10.0.0.2:2222"}, ed2),
		"10.0.0.3:2200 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed3))),
		"::1 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed3))),
		"@cert-authority 10.0.0.4 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed2))),
		"@revoked 10.0.0.5 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed1))),
		knownhosts.Line([]string{"10.0.0.1:22", "10.0.0.1:22"}, ed3),
	}, "\n") + "\n"
	hostports := []string{"10.0.0.1:22", "n1.example:22", "10.0.0.2:2222", "10.0.0.2:22", "10.0.0.3:2200", "[::1]:22", "10.0.0.4:22", "10.0.0.5:22", "10.0.0.9:22"}
	keys := func(ks []knownhosts.KnownKey) []string {
		var out []string
		for _, k := range ks {
			out = append(out, fmt.Sprintf("%s:%d %s", filepath.Base(k.Filename), k.Line, ssh.FingerprintSHA256(k.Key)))
		}
		return out
	}
	h := &hostKeys{path: filepath.Join(t.TempDir(), "known_hosts")}
	if err := os.WriteFile(h.path, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.callback(); err != nil {
		t.Fatal(err)
	}
	if h.index == nil {
		t.Fatal("a file of plain patterns was not indexed")
	}
	for _, hp := range hostports {
		got := keys(h.known(hp))
		h.index = nil // the checker's answer
		want := keys(h.known(hp))
		h.mu.Lock()
		h.check = nil
		h.mu.Unlock()
		if _, err := h.callback(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: index lists %v, the checker %v", hp, got, want)
		}
	}
	if len(h.known("10.0.0.1:22")) != 3 {
		t.Errorf("10.0.0.1 has %v, want its 3 lines", keys(h.known("10.0.0.1:22")))
	}

	for _, odd := range []string{"10.0.0.* ", "!10.0.0.7,10.0.0.8 ", knownhosts.HashHostname("10.0.0.6") + " "} {
		if err := os.WriteFile(h.path, []byte(plain+odd+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed2)))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		h.check = nil
		h.mu.Unlock()
		if _, err := h.callback(); err != nil {
			t.Fatal(err)
		}
		if h.index != nil {
			t.Errorf("a file with the pattern %q was indexed", odd)
		}
	}
}
