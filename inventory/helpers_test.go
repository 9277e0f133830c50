package inventory

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/ssh/agent"

	"github.com/drover-project/drover/internal/sshtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// baseConfig trusts the fixture's server and offers its client key.
func baseConfig(f sshtest.Fixture) Config {
	return Config{
		IdentityFiles:  []string{f.Key.Path},
		KnownHostsFile: f.KnownHosts,
		ConnectTimeout: 5 * time.Second,
	}
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// poolNode is a pool and one in-process node "n1" it trusts, as root.
func poolNode(t *testing.T, opts sshtest.Options) (*Pool, sshtest.Fixture, Target) {
	t.Helper()
	noAgent(t)
	f := sshtest.Setup(t, opts)
	return newPool(t, baseConfig(f)), f, targetOf(f.Server, "n1")
}

func targetOf(s *sshtest.Server, name string) Target {
	return Target{Name: name, Address: s.Host(), Port: s.Port(), User: "root"}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustRun(t testing.TB, p *Pool, tg Target, script string) Result {
	t.Helper()
	res, err := p.Run(ctxT(t), tg, script, nil)
	if err != nil {
		t.Fatalf("Run %q: %v", script, err)
	}
	return res
}

// eventually polls cond for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantErr(t testing.TB, err, sentinel error, reason string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not wrap %v", err, sentinel)
	}
	if got := Reason(err); got != reason {
		t.Fatalf("Reason(%v) = %q, want %q", err, got, reason)
	}
}

// startAgent serves keyring on a unix socket and points SSH_AUTH_SOCK at it.
func startAgent(t *testing.T, keys ...any) {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := t.TempDir() + "/agent.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				agent.ServeAgent(keyring, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	t.Setenv("SSH_AUTH_SOCK", sock)
}

// noAgent makes sure a developer's own agent does not leak into a test.
func noAgent(t *testing.T) { t.Setenv("SSH_AUTH_SOCK", "") }
