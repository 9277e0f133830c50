package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
)

func TestKeyAuthRunsScript(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	res := mustRun(t, p, targetOf(f.Server, "n1"), `echo "hello $USER"; echo warn >&2; exit 4`)
	if string(res.Stdout) != "hello root\n" || string(res.Stderr) != "warn\n" || res.ExitCode != 4 {
		t.Fatalf("got %+v (stdout %q stderr %q)", res, res.Stdout, res.Stderr)
	}
}

func TestAgentAuth(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.WriteClientKey(t, dir, "agent_key", "")
	startAgent(t, key.Private)
	f := sshtest.Setup(t, sshtest.Options{AuthorizedKeys: nil})
	// Only the agent's key is authorized on this server.
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{key.Signer.PublicKey()}})
	sshtest.WriteKnownHosts(t, f.KnownHosts, s)

	cfg := baseConfig(f)
	cfg.IdentityFiles = nil
	p := newPool(t, cfg)
	if res := mustRun(t, p, targetOf(s, "n1"), "echo agent"); string(res.Stdout) != "agent\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}

	// A missing identity file is tolerated while the agent has keys.
	cfg.IdentityFiles = []string{filepath.Join(dir, "missing")}
	p2 := newPool(t, cfg)
	mustRun(t, p2, targetOf(s, "n1"), "true")

	// Identity files come first, then the agent's keys.
	cfg.IdentityFiles = []string{f.Key.Path}
	p3 := newPool(t, cfg)
	mustRun(t, p3, targetOf(s, "n1"), "true")
	mustRun(t, p3, targetOf(f.Server, "n2"), "true")
}

func TestMissingIdentityFileIsNamed(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	missing := filepath.Join(t.TempDir(), "id_missing")
	cfg.IdentityFiles = append(cfg.IdentityFiles, missing)
	_, err := NewPool(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("want an error naming %s, got %v", missing, err)
	}
}

func TestNoKeysAtAll(t *testing.T) {
	noAgent(t)
	t.Setenv("HOME", t.TempDir()) // no default identities either
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.IdentityFiles = nil
	if _, err := NewPool(cfg, nil); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Fatalf("want a no-keys error, got %v", err)
	}
}

func TestPassphraseKeyIsNamed(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	enc := writeLockedKey(t)
	cfg := baseConfig(f)
	cfg.IdentityFiles = []string{enc.Path}
	_, err := NewPool(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), enc.Path) || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("want a passphrase error naming %s, got %v", enc.Path, err)
	}
}

func TestPassphraseKeyHeldByAgent(t *testing.T) {
	enc := writeLockedKey(t)
	startAgent(t, enc.Private)
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{enc.Signer.PublicKey()}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshtest.WriteKnownHosts(t, kh, s)
	p := newPool(t, Config{IdentityFiles: []string{enc.Path}, KnownHostsFile: kh})
	mustRun(t, p, targetOf(s, "n1"), "true")
}

func TestUnauthorizedKeyIsAuthError(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{KeyboardInteractive: true})
	other := sshtest.WriteClientKey(t, t.TempDir(), "id_other", "")
	cfg := baseConfig(f)
	cfg.IdentityFiles = []string{other.Path}
	p := newPool(t, cfg)
	tg := targetOf(f.Server, "n1")
	_, err := p.Run(ctxT(t), tg, "true", nil)
	wantErr(t, err, ErrAuth, "auth")
	if !strings.Contains(err.Error(), "n1") || !strings.Contains(err.Error(), tg.HostPort()) {
		t.Errorf("error does not name the node and address: %v", err)
	}
}

// writeLockedKey copies testdata/locked_ed25519 (made by ssh-keygen with
// passphrase "s3cret"; testdata/unlocked_ed25519 is the same key without
// it) into a temp dir. A saved key avoids seconds of bcrypt under -race.
func writeLockedKey(t *testing.T) sshtest.ClientKey {
	t.Helper()
	locked, err := os.ReadFile("testdata/locked_ed25519")
	if err != nil {
		t.Fatal(err)
	}
	unlocked, err := os.ReadFile("testdata/unlocked_ed25519")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ssh.ParseRawPrivateKey(unlocked)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_locked")
	if err := os.WriteFile(path, locked, 0o600); err != nil {
		t.Fatal(err)
	}
	return sshtest.ClientKey{Signer: signer, Path: path, Private: priv}
}
