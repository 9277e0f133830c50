package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
)

// TestDefaultIdentities: with no identity files configured anywhere, the
// pool offers OpenSSH's default ~/.ssh/id_ed25519, id_ecdsa, id_rsa that
// exist (here: only id_rsa's name holds a usable key, id_ecdsa is absent).
func TestDefaultIdentities(t *testing.T) {
	noAgent(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	dotSSH := filepath.Join(home, ".ssh")
	os.MkdirAll(dotSSH, 0o700)
	ed := sshtest.WriteClientKey(t, dotSSH, "id_ed25519", "")
	rsa := sshtest.WriteClientKey(t, dotSSH, "id_rsa", "") // an ed25519 key under that name
	if got := DefaultIdentities(); len(got) != 2 || got[0] != ed.Path || got[1] != rsa.Path {
		t.Fatalf("DefaultIdentities() = %v, want [%s %s]", got, ed.Path, rsa.Path)
	}
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{rsa.Signer.PublicKey()}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshtest.WriteKnownHosts(t, kh, s)
	p := newPool(t, Config{KnownHostsFile: kh})
	mustRun(t, p, targetOf(s, "n1"), "true")
}

// TestSSHConfigAlias: a node addressed by an ssh_config alias is reached
// with the alias's HostName, Port, User, IdentityFile and
// UserKnownHostsFile, and a health check on the alias dials the node.
func TestSSHConfigAlias(t *testing.T) {
	noAgent(t)
	t.Setenv("HOME", t.TempDir())
	bin := t.TempDir()
	writeScript(t, filepath.Join(bin, "sudo"), `shift; exec "$@"`)
	f := sshtest.Setup(t, sshtest.Options{Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}})
	sc := mustSSHConfig(t, fmt.Sprintf(`
Host web-1
  HostName %s
  IdentityFile %s
  UserKnownHostsFile %s
Host web-*
  User operator
  Port %d
  IdentitiesOnly yes
Host *
  Port 1
`, f.Server.Host(), f.Key.Path, f.KnownHosts, f.Server.Port()))
	p := newPool(t, Config{SSHConfig: sc})
	tg := Target{Name: "w1", Address: "web-1"}
	// Not root: the script runs under sudo, which the fake node provides.
	if res := mustRun(t, p, tg, `echo "$USER"`); string(res.Stdout) != "operator\n" {
		t.Errorf("login user %q, want operator from ssh_config", res.Stdout)
	}
	_, port := splitPort(t, startEcho(t))
	c, err := p.DialTCP(ctxT(t), tg, "web-1:"+port)
	if err != nil {
		t.Fatalf("DialTCP on the alias: %v", err)
	}
	c.Close()
}

func splitPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	t.Fatalf("no port in %s", addr)
	return "", ""
}

// TestIdentitiesOnly: with ssh_config's IdentitiesOnly yes, the agent's
// keys that are not the host's IdentityFile are not offered.
func TestIdentitiesOnly(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	inAgent := sshtest.WriteClientKey(t, dir, "agent_key", "")
	file := sshtest.WriteClientKey(t, dir, "file_key", "")
	startAgent(t, inAgent.Private)
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{inAgent.Signer.PublicKey()}})
	kh := filepath.Join(dir, "known_hosts")
	sshtest.WriteKnownHosts(t, kh, s)
	for _, only := range []string{"no", "yes"} {
		sc := mustSSHConfig(t, fmt.Sprintf("Host n\n  HostName %s\n  Port %d\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n  IdentitiesOnly %s\n",
			s.Host(), s.Port(), file.Path, kh, only))
		p := newPool(t, Config{SSHConfig: sc})
		_, err := p.Run(ctxT(t), Target{Name: "n", Address: "n"}, "true", nil)
		switch {
		case only == "no" && err != nil:
			t.Errorf("IdentitiesOnly no: the agent's key should log in: %v", err)
		case only == "yes" && !errors.Is(err, ErrAuth):
			t.Errorf("IdentitiesOnly yes: want an auth error (the agent's key is not the IdentityFile), got %v", err)
		}
	}
}
