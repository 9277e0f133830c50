package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestBastionSharedByManyNodes: 100 nodes behind one bastion open one
// bastion connection, which carries 100 tunnels.
func TestBastionSharedByManyNodes(t *testing.T) {
	b, _, _, cfg := bastionSetup(t)
	auth := []ssh.PublicKey{b.Key.Signer.PublicKey()}
	const n = 100
	var nodes []*sshtest.Server
	for range n {
		nodes = append(nodes, sshtest.Start(t, sshtest.Options{AuthorizedKeys: auth}))
	}
	sshtest.WriteKnownHosts(t, b.KnownHosts, append([]*sshtest.Server{b.Server}, nodes...)...)
	p := newPool(t, cfg)
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Go(func() { mustRun(t, p, targetOf(s, fmt.Sprintf("n%d", i)), "true") })
	}
	wg.Wait()
	if st := b.Server.Stats(); st.Accepted != 1 || st.DirectTCPIP != n {
		t.Errorf("bastion stats %+v, want 1 connection carrying %d tunnels", st, n)
	}
}

// TestJumpChainWithOwnKeys: a node behind two jump hosts, each hop
// accepting only its own key and trusted by its own known_hosts file;
// the second hop's tunnel runs through the first.
func TestJumpChainWithOwnKeys(t *testing.T) {
	noAgent(t)
	dir := t.TempDir()
	k1 := sshtest.WriteClientKey(t, dir, "k1", "")
	k2 := sshtest.WriteClientKey(t, dir, "k2", "")
	kn := sshtest.WriteClientKey(t, dir, "kn", "")
	hop1 := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{k1.Signer.PublicKey()}})
	hop2 := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{k2.Signer.PublicKey()}})
	node := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{kn.Signer.PublicKey()}})
	kh1, kh2, khn := filepath.Join(dir, "kh1"), filepath.Join(dir, "kh2"), filepath.Join(dir, "khn")
	sshtest.WriteKnownHosts(t, kh1, hop1)
	sshtest.WriteKnownHosts(t, kh2, hop2)
	sshtest.WriteKnownHosts(t, khn, node)

	p := newPool(t, Config{IdentityFiles: []string{kn.Path}, KnownHostsFile: khn, ConnectTimeout: 5 * time.Second})
	tg := targetOf(node, "n1")
	tg.Jump = []Bastion{
		{Address: hop1.Host(), Port: hop1.Port(), User: "j1", IdentityFiles: []string{k1.Path}, KnownHostsFile: kh1},
		{Address: hop2.Host(), Port: hop2.Port(), User: "j2", IdentityFiles: []string{k2.Path}, KnownHostsFile: kh2},
	}
	if res := mustRun(t, p, tg, "echo deep"); string(res.Stdout) != "deep\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
	if hop1.Stats().DirectTCPIP != 1 || hop2.Stats().DirectTCPIP != 1 || hop2.Stats().Accepted != 1 || node.Stats().Sessions != 1 {
		t.Errorf("hop1 %+v hop2 %+v node %+v", hop1.Stats(), hop2.Stats(), node.Stats())
	}

	// The second hop not in its known_hosts: refused, naming that hop.
	os.WriteFile(kh2, nil, 0o600)
	p2 := newPool(t, Config{IdentityFiles: []string{kn.Path}, KnownHostsFile: khn})
	_, err := p2.Run(ctxT(t), tg, "true", nil)
	wantErr(t, err, ErrHostKey, "hostkey")
	if !strings.Contains(err.Error(), hop2.Addr()) {
		t.Errorf("error does not name the second hop: %v", err)
	}
}
