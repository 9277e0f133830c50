// Package e2essh runs drover's SSH transport against real OpenSSH sshd
// (harness light nodes): a node reached only through a two-hop ProxyJump
// chain from ssh_config, each hop with its own key and known_hosts, the
// node named by an ssh_config alias; and OpenSSH's default identities.
// The tests need root and skip under -short.
package e2essh

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/test/harness"
)

func TestRealOpenSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("boots light nodes")
	}
	harness.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := harness.BootLight(ctx, harness.Options{N: 3, Name: "essh", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("SSH_AUTH_SOCK", "") // no agent: only the keys named are offered

	t.Run("ProxyJumpChainFromSSHConfig", func(t *testing.T) { testChain(t, ctx, c) })
	t.Run("DefaultIdentities", func(t *testing.T) { testDefaultIdentities(t, ctx, c) })
	t.Run("ApplyImportedAnsibleInventory", func(t *testing.T) { testApplyImported(t, ctx, c) })
}

// testApplyImported: `drover import ansible` turns an INI inventory of
// two nodes into a nodes block; a manifest naming it as inventoryFile
// applies, and the nodes get the file rendered from the imported roles
// and labels.
func testApplyImported(t *testing.T, ctx context.Context, c *harness.Cluster) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "drover")
	if err := harness.BuildDrover(ctx, bin); err != nil {
		t.Fatal(err)
	}
	w1, w2 := c.Nodes[0], c.Nodes[1]
	ini := fmt.Sprintf(`[web]
w1 ansible_host=%s ansible_port=%d
w2 ansible_host=%s ansible_port=%d tier=canary

[web:vars]
tier=frontend

[all:vars]
ansible_user=%s
ansible_ssh_private_key_file=%s
ansible_python_interpreter=/usr/bin/python3
`, w1.Address, w1.Port, w2.Address, w2.Port, c.User, c.IdentityFile)
	os.WriteFile(filepath.Join(dir, "hosts.ini"), []byte(ini), 0o644)
	drover := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "SSH_AUTH_SOCK=")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	nodes, warnings, err := drover("import", "ansible", "hosts.ini")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, warnings)
	}
	if !strings.Contains(warnings, "ansible_python_interpreter not mapped") {
		t.Errorf("import warnings:\n%s", warnings)
	}
	os.WriteFile(filepath.Join(dir, "nodes.yaml"), []byte(nodes), 0o644)
	manifest := fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: imported}
spec:
  inventoryFile: nodes.yaml
  ssh: {knownHostsFile: %s}
  components:
    - name: motd
      version: "1"
      roles: [web]
      files: [{path: conf/motd, template: "{{ .Node.Name }} {{ index .Node.Labels \"tier\" }}\n"}]
`, c.KnownHostsFile)
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(manifest), 0o644)
	if out, errs, err := drover("apply", "-f", "cluster.yaml", "--yes"); err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, errs)
	}
	for name, want := range map[string]string{w1.Name: "w1 frontend", w2.Name: "w2 canary"} {
		out, err := c.Exec(ctx, name, "cat "+harness.DefaultInstallRoot+"/active/motd/conf/motd")
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("node %s: motd %q (%v), want %q", name, out, err, want)
		}
	}
	if out, errs, err := drover("plan", "-f", "cluster.yaml"); err != nil {
		t.Errorf("plan after apply: %v (want no changes)\n%s%s", err, out, errs)
	}
}

// testChain: tgt is an ssh_config alias whose ProxyJump is inner, whose
// own ProxyJump is outer; every host accepts only its own key and is
// trusted by its own known_hosts file.
func testChain(t *testing.T, ctx context.Context, c *harness.Cluster) {
	t.Setenv("HOME", t.TempDir()) // no default identities to fall back on
	dir := t.TempDir()
	outer, inner, target := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	type hop struct {
		node       harness.Node
		alias      string
		key        sshtest.ClientKey
		knownHosts string
	}
	hops := []*hop{{node: outer, alias: "outer"}, {node: inner, alias: "inner"}, {node: target, alias: "tgt"}}
	for _, h := range hops {
		h.key = sshtest.WriteClientKey(t, dir, "id_"+h.alias, "")
		if err := c.AuthorizeKey(h.node.Name, string(ssh.MarshalAuthorizedKey(h.key.Signer.PublicKey()))); err != nil {
			t.Fatal(err)
		}
		line, err := c.KnownHostsLine(h.node.Name)
		if err != nil {
			t.Fatal(err)
		}
		h.knownHosts = filepath.Join(dir, "known_hosts_"+h.alias)
		os.WriteFile(h.knownHosts, []byte(line+"\n"), 0o600)
	}
	config := func(innerKey, innerKnownHosts string) *inventory.SSHConfig {
		text := fmt.Sprintf(`
Host tgt
  HostName %s
  Port %d
  IdentityFile %s
  UserKnownHostsFile %s
  ProxyJump inner
Host inner
  HostName %s
  Port %d
  IdentityFile %s
  UserKnownHostsFile %s
  ProxyJump outer
Host outer
  HostName %s
  Port %d
  IdentityFile %s
  UserKnownHostsFile %s
Host *
  User %s
  IdentitiesOnly yes
`, target.Address, target.Port, hops[2].key.Path, hops[2].knownHosts,
			inner.Address, inner.Port, innerKey, innerKnownHosts,
			outer.Address, outer.Port, hops[0].key.Path, hops[0].knownHosts, c.User)
		path := filepath.Join(t.TempDir(), "config")
		os.WriteFile(path, []byte(text), 0o600)
		sc, err := inventory.LoadSSHConfig(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	newPool := func(sc *inventory.SSHConfig) *inventory.Pool {
		p, err := inventory.NewPool(inventory.Config{SSHConfig: sc, ConnectTimeout: 10 * time.Second}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	tgt := inventory.Target{Name: "tgt", Address: "tgt"}

	p := newPool(config(hops[1].key.Path, hops[1].knownHosts))
	res, err := p.Run(ctx, tgt, "cat /proc/sys/kernel/hostname >/dev/null; echo through", nil)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "through" {
		t.Fatalf("run through the chain: %q, %v", res.Stdout, err)
	}
	// From this process, only the first hop is connected to: the others
	// are reached through it.
	peers := tcpPeers(t)
	if !peers[hostPort(outer)] || peers[hostPort(inner)] || peers[hostPort(target)] {
		t.Errorf("this process's TCP peers %v: want %s only (the first hop), not %s or %s",
			keys(peers), hostPort(outer), hostPort(inner), hostPort(target))
	}

	// inner offered outer's key: refused there, and the error says where.
	_, err = newPool(config(hops[0].key.Path, hops[1].knownHosts)).Run(ctx, tgt, "true", nil)
	if !errors.Is(err, inventory.ErrAuth) || !strings.Contains(err.Error(), hostPort(inner)) {
		t.Errorf("inner with outer's key: %v, want an auth error naming %s", err, hostPort(inner))
	}
	// inner checked against a known_hosts without its key: refused, key shown.
	empty := filepath.Join(dir, "empty_known_hosts")
	os.WriteFile(empty, nil, 0o600)
	_, err = newPool(config(hops[1].key.Path, empty)).Run(ctx, tgt, "true", nil)
	var hk *inventory.HostKeyError
	if !errors.As(err, &hk) || hk.HostPort != hostPort(inner) || hk.Status != inventory.KeyUnknown {
		t.Errorf("inner not in its known_hosts: %v, want an unknown-key error for %s", err, hostPort(inner))
	}
}

// testDefaultIdentities: with no key configured anywhere, ~/.ssh/id_ed25519 is offered.
func testDefaultIdentities(t *testing.T, ctx context.Context, c *harness.Cluster) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	key, err := os.ReadFile(c.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600)
	p, err := inventory.NewPool(inventory.Config{KnownHostsFile: c.KnownHostsFile}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n := c.Nodes[2]
	res, err := p.Run(ctx, inventory.Target{Name: n.Name, Address: n.Address, Port: n.Port, User: c.User}, "echo default", nil)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "default" {
		t.Fatalf("run with the default identity: %q, %v", res.Stdout, err)
	}
}

func hostPort(n harness.Node) string { return net.JoinHostPort(n.Address, strconv.Itoa(n.Port)) }

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// tcpPeers lists the remote ends of this process's established IPv4 TCP
// sockets, from /proc/net/tcp and this process's socket fds.
func tcpPeers(t *testing.T) map[string]bool {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	f, err := os.Open("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	peers := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "01" || !inodes[fields[9]] {
			continue
		}
		addr, port, ok := strings.Cut(fields[2], ":")
		raw, err1 := hex.DecodeString(addr)
		p, err2 := strconv.ParseUint(port, 16, 16)
		if !ok || err1 != nil || err2 != nil || len(raw) != 4 {
			continue
		}
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, binary.LittleEndian.Uint32(raw))
		peers[net.JoinHostPort(ip.String(), strconv.Itoa(int(p)))] = true
	}
	return peers
}
