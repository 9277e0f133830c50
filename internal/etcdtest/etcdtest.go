// Package etcdtest runs real etcd server processes for tests: one member
// or a cluster of several, each on its own loopback address, each with its
// own data dir under the test's temp dir. The etcd binary comes from
// Debian's etcd-server package (Makefile DEB_PKGS).
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Ports every member uses on its own address.
const (
	ClientPort = 2379
	PeerPort   = 2380
)

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	name    string
	members []*Member
}

// Member is one etcd server.
type Member struct {
	Name, Addr, Dir string
	// Views are more addresses the member serves clients on (see
	// StartViews).
	Views   []string
	initial string // --initial-cluster
	token   string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
}

// Start runs an etcd cluster with one member per address (loopback
// addresses the caller owns) and waits until it has a leader. The
// members are killed when the test ends.
func Start(t testing.TB, addrs ...string) *Cluster {
	t.Helper()
	return StartViews(t, addrs, nil)
}

// StartViews is Start with more client addresses: views[v][i] is another
// address member i serves clients on, so that client v, given
// ViewEndpoints(v), reaches etcd by addresses of its own, which a test
// may cut off (nftables) without cutting the others off.
func StartViews(t testing.TB, addrs []string, views [][]string) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd not found on PATH: install Debian's etcd-server package (make deps): %v", err)
	}
	c := &Cluster{t: t, bin: bin, name: fmt.Sprintf("drover-test-%d", time.Now().UnixNano())}
	dir := t.TempDir()
	var initial []string
	for i, a := range addrs {
		m := &Member{Name: fmt.Sprintf("m%d", i+1), Addr: a, Dir: filepath.Join(dir, fmt.Sprintf("m%d", i+1)), token: c.name}
		for _, v := range views {
			m.Views = append(m.Views, v[i])
		}
		c.members = append(c.members, m)
		initial = append(initial, fmt.Sprintf("%s=http://%s", m.Name, net.JoinHostPort(a, fmt.Sprint(PeerPort))))
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		if err := c.start(m); err != nil {
			c.Stop()
			t.Fatal(err)
		}
	}
	t.Cleanup(c.Stop)
	c.WaitHealthy(30 * time.Second)
	return c
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.ClientURL()
	}
	return out
}

// ViewEndpoints are the client URLs of view v (StartViews).
func (c *Cluster) ViewEndpoints(v int) []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = "http://" + net.JoinHostPort(m.Views[v], fmt.Sprint(ClientPort))
	}
	return out
}

// Members are the cluster's servers, in the order of Start's addresses.
func (c *Cluster) Members() []*Member { return c.members }

// ClientURL is the member's client URL.
func (m *Member) ClientURL() string {
	return "http://" + net.JoinHostPort(m.Addr, fmt.Sprint(ClientPort))
}

func (c *Cluster) start(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return err
	}
	peer := "http://" + net.JoinHostPort(m.Addr, fmt.Sprint(PeerPort))
	state := "new"
	if _, err := os.Stat(filepath.Join(m.Dir, "data", "member")); err == nil {
		state = "existing"
	}
	log, err := os.OpenFile(filepath.Join(m.Dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	listen := []string{m.ClientURL()}
	for _, v := range m.Views {
		listen = append(listen, "http://"+net.JoinHostPort(v, fmt.Sprint(ClientPort)))
	}
	cmd := exec.Command(c.bin,
		"--name", m.Name,
		"--data-dir", filepath.Join(m.Dir, "data"),
		"--listen-client-urls", strings.Join(listen, ","),
		"--advertise-client-urls", m.ClientURL(),
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", m.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", m.token,
		// Short timings: a test's elections take a second, not ten.
		"--heartbeat-interval", "100",
		"--election-timeout", "1000",
		"--logger", "zap",
		"--log-outputs", "stderr",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start etcd %s: %w", m.Name, err)
	}
	m.cmd, m.log, m.exited = cmd, log, make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(cmd, m.exited)
	return nil
}

// Kill ends the member at once (SIGKILL) and waits for it to exit.
func (c *Cluster) Kill(m *Member) {
	m.mu.Lock()
	cmd, exited, log := m.cmd, m.exited, m.log
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
	log.Close()
}

// Restart starts a killed member again on its data dir.
func (c *Cluster) Restart(m *Member) {
	c.t.Helper()
	if err := c.start(m); err != nil {
		c.t.Fatal(err)
	}
}

// Stop kills every member.
func (c *Cluster) Stop() {
	for _, m := range c.members {
		c.Kill(m)
	}
}

// Client is a client of every member, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: nopLogger()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitHealthy waits until a linearizable read succeeds.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: nopLogger()})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster not healthy after %s: %v (logs in %s)", timeout, err, filepath.Dir(c.members[0].Dir))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Leader is the member that leads the raft cluster now, nil when none
// answers as leader.
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: nopLogger()})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	for _, m := range c.members {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, m.ClientURL())
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return m
		}
	}
	return nil
}
