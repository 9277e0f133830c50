package probes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/internal/sshtest"
	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"golang.org/x/crypto/ssh"
)

// sshNode is an in-process SSH server reached through the real Pool: the
// whole transport a production probe uses, on loopback.
func sshNode(t *testing.T) (*inventory.Pool, inventory.Target, *sshtest.Server, string) {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{})
	pool, err := inventory.NewPool(inventory.Config{
		IdentityFiles:  []string{f.Key.Path},
		KnownHostsFile: f.KnownHosts,
		ConnectTimeout: 2 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	target := inventory.Target{Name: "n1", Address: f.Server.Host(), Port: f.Server.Port(), User: "root"}
	return pool, target, f.Server, filepath.Join(t.TempDir(), "opt", "drover")
}

func TestProbeOverSSH(t *testing.T) {
	pool, target, srv, root := sshNode(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	_, port := hostPort(t, web.Listener.Addr().String())
	for _, d := range []string{"receipts", "packages/web/1.0"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "receipts", "web.json"), []byte(`{"component":"web","version":"1.0"}`), 0o644)
	req := Request{InstallRoot: root, UnitDir: filepath.Join(root, "units"), Components: []Want{
		{Name: "web", Version: "1.0", Health: &manifests.Health{HTTP: &manifests.HTTPCheck{Port: port, Path: "/"}, Timeout: "2s"}},
	}}
	obs := Probe(context.Background(), pool, target, req)
	if !obs.Known {
		t.Fatalf("probe = %+v", obs)
	}
	web1 := obs.Components["web"]
	complete, unpacked := web1.Packages["1.0"]
	if web1.Receipt == nil || web1.Receipt.Version != "1.0" || !unpacked || complete || !web1.Health.OK {
		t.Errorf("web = %+v", web1)
	}
	st := srv.Stats()
	if st.Sessions != 1 || st.DirectTCPIP != 1 || st.Authenticated != 1 {
		t.Errorf("server saw %+v, want one session, one direct-tcpip channel, one handshake", st)
	}
}

// TestProbeOverSSHCutOff: the connection drops while the script runs; the
// probe is Unknown, not a partial answer.
func TestProbeOverSSHCutOff(t *testing.T) {
	pool, target, srv, root := sshNode(t)
	if err := os.MkdirAll(filepath.Join(root, "receipts"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "receipts", "slow.json"), []byte(`{"component":"slow","version":"1"}`), 0o644)
	req := Request{InstallRoot: root, UnitDir: filepath.Join(root, "units"), Components: []Want{
		{Name: "slow", Health: &manifests.Health{Exec: &manifests.ExecCheck{Command: []string{"sleep", "30"}}, Timeout: "60s"}},
	}}
	done := make(chan Observed, 1)
	go func() { done <- Probe(context.Background(), pool, target, req) }()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().InFlight == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the probe never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the script print its first blocks
	srv.DropConnections()
	select {
	case obs := <-done:
		if obs.Known || obs.Components != nil || obs.Reason == "" {
			t.Errorf("cut-off probe = %+v", obs)
		}
		t.Logf("cut off: reason %s: %s", obs.Reason, obs.Error)
	case <-time.After(20 * time.Second):
		t.Fatal("probe did not return after the connection dropped")
	}
}

// TestProbeOverSSHHostKeyChanged: a node presenting another key is
// Unknown with reason hostkey.
func TestProbeOverSSHHostKeyChanged(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{})
	other := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{f.Key.Signer.PublicKey()}})
	// known_hosts trusts f's key for other's address.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshtest.AppendKnownHosts(t, kh, sshtest.KnownHostsLine(other.Addr(), f.Server.HostKey()))
	pool, err := inventory.NewPool(inventory.Config{IdentityFiles: []string{f.Key.Path}, KnownHostsFile: kh, ConnectTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	target := inventory.Target{Name: "n1", Address: other.Host(), Port: other.Port(), User: "root"}
	obs := Probe(context.Background(), pool, target, Request{InstallRoot: "/nonexistent"})
	if obs.Known || obs.Reason != "hostkey" || !strings.Contains(obs.Error, "SHA256:") {
		t.Errorf("probe = %+v", obs)
	}
}

// TestProbeResidentShell: probes over the Pool run in one resident shell,
// give the same answer as a fresh shell, and start uname once per shell
// and df once every ten probes (the rest once per probe).
func TestProbeResidentShell(t *testing.T) {
	local := newLocalRunner(t)
	n := newTestNode(t, local)
	n.receipt("zk", "3.8.0")
	n.pkg("zk", "3.8.0", true)
	n.activate("zk", "3.8.0")
	cfg := filepath.Join(n.root, "packages/zk/3.8.0/zoo.cfg")
	n.write(cfg, "tickTime=2000\n", 0o644)
	n.unit("zk", "[Service]\n", "active running enabled")
	req := n.request(Want{Name: "zk", Version: "3.8.0", Service: true, Files: []string{cfg}, Health: execHealth("true")})
	fresh := runScript(t, local, req)
	n.toolCalls()

	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{Env: local.env})
	pool, err := inventory.NewPool(inventory.Config{IdentityFiles: []string{f.Key.Path}, KnownHostsFile: f.KnownHosts, ConnectTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	target := inventory.Target{Name: "n1", Address: f.Server.Host(), Port: f.Server.Port(), User: "root"}
	const probes = 12
	for i := range probes {
		obs := Probe(context.Background(), pool, target, req)
		if !obs.Known {
			t.Fatalf("probe %d: %+v", i, obs)
		}
		if obs.OS.FreeBytes <= 0 {
			t.Errorf("probe %d: free bytes %d", i, obs.OS.FreeBytes)
		}
		obs.Node, obs.ProbedAt, obs.Duration, obs.OS.FreeBytes = "", fresh.ProbedAt, fresh.Duration, fresh.OS.FreeBytes
		if !reflect.DeepEqual(obs, fresh) {
			t.Fatalf("probe %d differs from a fresh shell's:\n%+v\n%+v", i, obs, fresh)
		}
	}
	want := map[string]int{"uname": 1, "df": 2, "stat": probes, "sha256sum": probes, "systemctl": probes, "timeout": probes}
	if got := n.toolCalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("tool runs over %d probes = %v, want %v", probes, got, want)
	}
	if st := f.Server.Stats(); st.Sessions != 1 {
		t.Errorf("server saw %+v, want every probe in one session", st)
	}
}
