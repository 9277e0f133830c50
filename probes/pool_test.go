package probes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
