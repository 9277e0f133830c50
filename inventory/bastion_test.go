package inventory

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
)

// bastionSetup starts a bastion and two nodes behind it, all accepting
// one key and all in one known_hosts file.
func bastionSetup(t *testing.T) (b sshtest.Fixture, n1, n2 *sshtest.Server, cfg Config) {
	t.Helper()
	noAgent(t)
	b = sshtest.Setup(t, sshtest.Options{})
	auth := []ssh.PublicKey{b.Key.Signer.PublicKey()}
	n1 = sshtest.Start(t, sshtest.Options{AuthorizedKeys: auth})
	n2 = sshtest.Start(t, sshtest.Options{AuthorizedKeys: auth})
	sshtest.WriteKnownHosts(t, b.KnownHosts, n1, n2)
	cfg = baseConfig(b)
	cfg.Bastion = &Bastion{Address: b.Server.Host(), Port: b.Server.Port(), User: "jump"}
	return b, n1, n2, cfg
}

func TestBastion(t *testing.T) {
	b, n1, n2, cfg := bastionSetup(t)
	p := newPool(t, cfg)
	if res := mustRun(t, p, targetOf(n1, "n1"), "echo one"); string(res.Stdout) != "one\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
	mustRun(t, p, targetOf(n2, "n2"), "true")
	mustRun(t, p, targetOf(n1, "n1"), "true")

	if st := b.Server.Stats(); st.Accepted != 1 || st.DirectTCPIP != 2 || st.Sessions != 0 {
		t.Errorf("bastion stats %+v, want 1 connection carrying 2 tunnels and no sessions", st)
	}
	if n1.Stats().Accepted != 1 || n1.Stats().Sessions != 2 {
		t.Errorf("n1 stats %+v", n1.Stats())
	}
	if n := p.Connections(); n != 3 {
		t.Errorf("Connections() = %d, want 3 (bastion + 2 nodes)", n)
	}

	// The bastion link dies: the next run redials bastion and node.
	b.Server.DropConnections()
	mustRun(t, p, targetOf(n1, "n1"), "true")
	if b.Server.Stats().Accepted != 2 {
		t.Errorf("bastion dialled %d times, want 2", b.Server.Stats().Accepted)
	}
}

func TestBastionHostKeyIsChecked(t *testing.T) {
	b, n1, _, cfg := bastionSetup(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshtest.WriteKnownHosts(t, kh, n1) // not the bastion
	cfg.KnownHostsFile = kh
	p := newPool(t, cfg)
	_, err := p.Run(ctxT(t), targetOf(n1, "n1"), "true", nil)
	wantErr(t, err, ErrHostKey, "hostkey")
	if !strings.Contains(err.Error(), "bastion "+b.Server.Addr()) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(b.Server.HostKey())) {
		t.Errorf("error does not name the bastion and its key: %v", err)
	}
	if n1.Stats().Accepted != 0 {
		t.Error("node reached through an untrusted bastion")
	}
}

func TestBastionCannotReachNode(t *testing.T) {
	_, _, _, cfg := bastionSetup(t)
	p := newPool(t, cfg)
	_, err := p.Run(ctxT(t), Target{Name: "gone", Address: "127.0.0.1", Port: closedPort(t), User: "root"}, "true", nil)
	wantErr(t, err, ErrUnreachable, "unreachable")
	if !strings.Contains(err.Error(), "gone") || !strings.Contains(err.Error(), "via bastion") {
		t.Errorf("error does not say where it failed: %v", err)
	}
}

func TestDialTCPThroughBastionNode(t *testing.T) {
	_, n1, _, cfg := bastionSetup(t)
	p := newPool(t, cfg)
	c, err := p.DialTCP(ctxT(t), targetOf(n1, "n1"), startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("echo %q %v", buf, err)
	}
	if n1.Stats().DirectTCPIP != 1 {
		t.Errorf("forward did not go from the node: %+v", n1.Stats())
	}
}
