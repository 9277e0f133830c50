package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/reconciler/plan"
)

// statusFixture is what a daemon reports about a cluster with a rejected
// manifest, a halted rollout, one converged and one unreachable node.
func statusFixture() plan.ClusterStatus {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return plan.ClusterStatus{
		Cluster: "prod-east", Generation: 7, Hash: "9f86d081884c7d659a2feaa0c55ad015",
		LoadError:    "cluster.yaml: 2 problem(s):\n  spec.components[0].version: must not be empty\n  spec.nodes[1].address: \"x\" is not an IP address or host name",
		LastLoadTime: t0,
		Rollout:      plan.RolloutStatus{Halted: true, Reason: "upgrade zk 3.8.0 -> 3.8.4 on m2 failed its health check; rolled back to 3.8.0"},
		Nodes: []plan.NodeStatus{
			{Name: "m1", Address: "10.0.0.11", Reachable: true, Converged: true, Components: []plan.ComponentStatus{
				{Name: "zk", DesiredVersion: "3.8.0", ObservedVersion: "3.8.0", Sync: plan.Synced, Health: plan.Healthy},
				{Name: "node_exporter", DesiredVersion: "1.9.1", ObservedVersion: "1.9.1", Sync: plan.Synced, Health: plan.Healthy},
			}},
			{Name: "m2", Address: "10.0.0.12", Reachable: true, Reason: "zk: upgrade 3.8.0 -> 3.8.4 pending", Components: []plan.ComponentStatus{
				{Name: "zk", DesiredVersion: "3.8.4", ObservedVersion: "3.8.0", Sync: plan.OutOfSync, Health: plan.Healthy, Reason: "upgrade 3.8.0 -> 3.8.4 pending"},
				{Name: "old", ObservedVersion: "0.1", Sync: plan.OutOfSync, Health: plan.Healthy, Reason: "remove pending"},
			}},
			{Name: "a1", Address: "10.0.1.21", Reason: "dial: connection refused"},
		},
	}
}

func statusServer(t *testing.T, code int, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathStatus {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestStatusText(t *testing.T) {
	body, err := json.Marshal(statusFixture())
	if err != nil {
		t.Fatal(err)
	}
	addr := statusServer(t, http.StatusOK, body)
	code, out, errs := runDrover(t, "status", "--addr", addr)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `cluster prod-east, generation 7 (9f86d081884c)
manifest REJECTED, the last good one is in force:
  cluster.yaml: 2 problem(s):
    spec.components[0].version: must not be empty
    spec.nodes[1].address: "x" is not an IP address or host name
rollout HALTED: upgrade zk 3.8.0 -> 3.8.4 on m2 failed its health check; rolled back to 3.8.0
1/3 nodes converged

NODE  COMPONENT      DESIRED  OBSERVED  SYNC       HEALTH   REASON
m1    zk             3.8.0    3.8.0     Synced     Healthy  
m1    node_exporter  1.9.1    1.9.1     Synced     Healthy  
m2    zk             3.8.4    3.8.0     OutOfSync  Healthy  upgrade 3.8.0 -> 3.8.4 pending
m2    old            -        0.1       OutOfSync  Healthy  remove pending
a1    -              -        -         Unknown    Unknown  dial: connection refused
`
	if out != want {
		t.Errorf("status output:\n%s\nwant:\n%s", out, want)
	}
}

func TestStatusJSONIsTheDaemonsDocument(t *testing.T) {
	body := []byte(`{"cluster":"x","generation":1}` + "\n")
	addr := statusServer(t, http.StatusOK, body)
	code, out, _ := runDrover(t, "status", "--addr", addr, "-o", "json")
	if code != 0 || out != string(body) {
		t.Errorf("exit %d, out %q", code, out)
	}
}

func TestStatusErrors(t *testing.T) {
	addr := statusServer(t, http.StatusServiceUnavailable, []byte("no"))
	if code, _, errs := runDrover(t, "status", "--addr", addr); code != 1 || !strings.Contains(errs, "503") {
		t.Errorf("daemon answering 503: exit %d, %q", code, errs)
	}
	// A port nothing listens on.
	ln := httptest.NewServer(http.NotFoundHandler())
	dead := strings.TrimPrefix(ln.URL, "http://")
	ln.Close()
	if code, _, errs := runDrover(t, "status", "--addr", dead); code != 1 || !strings.Contains(errs, "no drover daemon answering on "+dead) {
		t.Errorf("no daemon: exit %d, %q", code, errs)
	}
}

// sshFiles writes an ed25519 identity and an empty known_hosts file.
func sshFiles(t *testing.T) (key, knownHosts string) {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "drover test")
	if err != nil {
		t.Fatal(err)
	}
	key, knownHosts = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return key, knownHosts
}

// unreachableManifest is a valid manifest whose nodes are loopback
// addresses nothing listens on, so the daemon runs without real nodes.
func unreachableManifest(t *testing.T, probeInterval string) string {
	t.Helper()
	key, kh := sshFiles(t)
	return fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: nowhere}
spec:
  probeInterval: %s
  ssh: {user: root, identityFiles: [%s], knownHostsFile: %s, connectTimeout: 1s}
  nodes:
    - {name: n1, address: 127.0.9.1, roles: [agent]}
    - {name: n2, address: 127.0.9.2, roles: [agent]}
  components:
    - name: conf
      version: "1"
      files: [{path: /etc/drover-test.conf, template: "x"}]
`, probeInterval, key, kh)
}

// inProcessDaemon runs `drover daemon` in this process until the test
// ends and returns the address it serves on.
func inProcessDaemon(t *testing.T, manifest, lockDir string) (addr string, stop func() error) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)).Core()))
	d := &daemon{svc: serviceOptions{stateDir: lockDir}, file: manifest, listen: "127.0.0.1:0", lockDir: lockDir, grace: 5 * time.Second}
	return runInProcess(t, d, log, logs)
}

// runInProcess runs d (its log set to log) until the test ends and returns
// the address it serves on once logs says it started.
func runInProcess(t *testing.T, d *daemon, log *zap.Logger, logs *observer.ObservedLogs) (addr string, stop func() error) {
	t.Helper()
	d.log = log
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(15 * time.Second):
			return fmt.Errorf("daemon did not stop")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range logs.FilterMessage("drover daemon started").All() {
			return e.ContextMap()["listen"].(string), stop
		}
		select {
		case err := <-errc:
			t.Fatalf("daemon exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("daemon did not start")
	return "", nil
}

func getStatus(t *testing.T, addr string) plan.ClusterStatus {
	t.Helper()
	resp, err := http.Get("http://" + addr + api.PathStatus)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st plan.ClusterStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + api.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDaemonSecondInstanceRefused: a second daemon on the same manifest
// (by another path to it, even) exits 1 naming the holder; once the first
// stops, one can start again.
func TestDaemonSecondInstanceRefused(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, "run")
	_, stop := inProcessDaemon(t, manifest, lockDir)

	// The same directory by another path.
	link := filepath.Join(t.TempDir(), "conf")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, errs := runDrover(t, "daemon", "-f", filepath.Join(link, "cluster.yaml"), "--lock-dir", lockDir, "--state-dir", lockDir, "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "another drover daemon already manages "+filepath.Join(link, "cluster.yaml")) ||
		!strings.Contains(errs, fmt.Sprintf("held by pid %d", os.Getpid())) {
		t.Errorf("second daemon: exit %d, stderr %q", code, errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the second daemon took %s to refuse", d)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	inProcessDaemon(t, manifest, lockDir) // the lock was released
}

// TestDaemonInvalidFirstManifest: with no last good manifest to keep, an
// invalid one at start is fatal, exit 1, listing every problem.
func TestDaemonInvalidFirstManifest(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	bad := strings.NewReplacer("version: \"1\"", "version: \"\"", "127.0.9.2", "not an address", "30s", "soon").
		Replace(unreachableManifest(t, "30s"))
	if err := os.WriteFile(manifest, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runDrover(t, "daemon", "-f", manifest, "--lock-dir", filepath.Join(dir, "run"), "--state-dir", filepath.Join(dir, "run"), "--addr", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errs)
	}
	// One line a problem, each naming the file, as compilers print them.
	for _, want := range []string{"spec.probeInterval", "spec.nodes[1].address", "spec.components[0].version"} {
		if !strings.Contains(errs, manifest+": "+want) {
			t.Errorf("stderr lacks %q:\n%s", manifest+": "+want, errs)
		}
	}
	if n := strings.Count(errs, manifest+": "); n != 3 {
		t.Errorf("stderr names the file %d times, want 3 (one line a problem):\n%s", n, errs)
	}
	if out != "" {
		t.Errorf("stdout: %q", out)
	}
	// A missing manifest is a new cluster, but its folder must exist.
	if code, _, errs := runDrover(t, "daemon", "-f", filepath.Join(dir, "nope", "cluster.yaml"), "--lock-dir", filepath.Join(dir, "run"), "--state-dir", filepath.Join(dir, "run")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("manifest in a missing folder: exit %d, %q", code, errs)
	}
}

// TestDaemonStartsWithoutManifest: a daemon for a new cluster starts with
// no manifest (the console and the setup wizard are how one gets
// written), reports that it has none, is not ready, and takes the
// manifest up once it appears.
func TestDaemonStartsWithoutManifest(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	addr, _ := inProcessDaemon(t, manifest, filepath.Join(dir, "run"))
	st := getStatus(t, addr)
	if st.LoadSuccess || !strings.Contains(st.LoadError, "no manifest yet at "+manifest) || len(st.Nodes) != 0 {
		t.Errorf("status without a manifest: %+v", st)
	}
	if resp, err := http.Get("http://" + addr + "/readyz"); err != nil || resp.StatusCode == http.StatusOK {
		t.Errorf("ready without a manifest: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the manifest taken up", func() bool {
		st := getStatus(t, addr)
		return st.LoadSuccess && st.Generation == 1 && len(st.Nodes) == 2
	})
}

// TestDaemonKeepsLastGoodManifest: with the daemon running, an invalid
// edit, an emptied file and a deleted file are each rejected (metrics and
// status say so, the generation stays); a valid edit is then taken.
func TestDaemonKeepsLastGoodManifest(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	good := unreachableManifest(t, "30s")
	if err := os.WriteFile(manifest, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, _ := inProcessDaemon(t, manifest, filepath.Join(dir, "run"))
	st := getStatus(t, addr)
	if st.Generation != 1 || !st.LoadSuccess || len(st.Nodes) != 2 {
		t.Fatalf("initial status: %+v", st)
	}
	hash := st.Hash

	for _, edit := range []struct {
		name, content, wantErr string
	}{
		{"invalid", strings.Replace(good, "version: \"1\"", "version: \"\"", 1), "spec.components[0].version"},
		{"empty", "\n", "empty"},
		{"deleted", "", "no such file"},
	} {
		if edit.name == "deleted" {
			if err := os.Remove(manifest); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(manifest, []byte(edit.content), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, edit.name+" manifest rejected", func() bool {
			st := getStatus(t, addr)
			return !st.LoadSuccess && strings.Contains(st.LoadError, edit.wantErr)
		})
		st := getStatus(t, addr)
		if st.Generation != 1 || st.Hash != hash || len(st.Nodes) != 2 {
			t.Errorf("%s: the last good manifest is not in force: %+v", edit.name, st)
		}
		if m := getMetrics(t, addr); !strings.Contains(m, "drover_manifest_load_success 0\n") || !strings.Contains(m, "drover_manifest_generation 1\n") {
			t.Errorf("%s: metrics do not show the rejection", edit.name)
		}
		// Back to good between edits, so each rejection is a change.
		if err := os.WriteFile(manifest, []byte(good), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the good manifest back", func() bool { return getStatus(t, addr).LoadSuccess })
	}

	if err := os.WriteFile(manifest, []byte(strings.Replace(good, "probeInterval: 30s", "probeInterval: 10s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new manifest", func() bool {
		st := getStatus(t, addr)
		return st.LoadSuccess && st.Generation == 2 && st.Hash != hash
	})
	// The probe interval is set just after the manifest is in force (and
	// written to the state store).
	eventually(t, 10*time.Second, "metrics after a good edit", func() bool {
		m := getMetrics(t, addr)
		return strings.Contains(m, "drover_manifest_load_success 1\n") && strings.Contains(m, "drover_probe_interval_seconds 10\n")
	})
}
