package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-project/drover/internal/sshtest"
	"github.com/drover-project/drover/reconciler/plan"
)

// probeFixture is a manifest with two nodes: m1, an in-process SSH server
// whose install root is a temp dir, and "down", where nothing listens.
type probeFixture struct {
	manifest string
	root     string
	tcpPort  int
	// configHash is app's on m1, for a receipt as an install writes it.
	configHash string
}

func newProbeFixture(t *testing.T) probeFixture {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{})
	dir := t.TempDir()
	root := filepath.Join(dir, "opt", "drover")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	fx := probeFixture{root: root, tcpPort: l.Addr().(*net.TCPAddr).Port, manifest: filepath.Join(dir, "cluster.yaml")}
	manifest := fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: probe-test}
spec:
  installRoot: %s
  ssh:
    user: root
    port: %d
    identityFiles: [%s]
    knownHostsFile: %s
    connectTimeout: 2s
  nodes:
    - {name: m1, address: 127.0.0.1, roles: [master]}
    - {name: down, address: 127.0.0.1, port: %d, roles: [master]}
  components:
    - name: app
      version: "1.0"
      roles: [master]
      files:
        - path: conf/app.cfg
          template: "node={{ .Node.Name }}\n"
      health: {tcp: {port: %d}, timeout: 2s}
`, root, f.Server.Port(), f.Key.Path, f.KnownHosts, closedPort, fx.tcpPort)
	if err := os.WriteFile(fx.manifest, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	_, d, err := compile(fx.manifest)
	if err != nil {
		t.Fatal(err)
	}
	fx.configHash = d.Node("m1").Component("app").ConfigHash
	return fx
}

// install lays app 1.0 out on m1 as an install would have.
func (fx probeFixture) install(t *testing.T, cfg string) {
	t.Helper()
	vdir := filepath.Join(fx.root, "packages", "app", "1.0")
	for _, d := range []string{filepath.Join(vdir, "conf"), filepath.Join(fx.root, "receipts"), filepath.Join(fx.root, "active")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(vdir, ".complete"):                  "",
		filepath.Join(vdir, "conf", "app.cfg"):            cfg,
		filepath.Join(fx.root, "receipts", "app.json"):    `{"component":"app","version":"1.0","configHash":"` + fx.configHash + `","generation":"1"}`,
		filepath.Join(fx.root, "receipts", "legacy.json"): `{"component":"legacy","version":"0.1","configHash":"x","generation":"1"}`,
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(fx.root, "active", "app")
	os.Remove(link)
	if err := os.Symlink("../packages/app/1.0", link); err != nil {
		t.Fatal(err)
	}
}

func runProbe(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"probe"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestProbeCommandOverSSH(t *testing.T) {
	fx := newProbeFixture(t)
	fx.install(t, "node=m1\n")

	code, out, errOut := runProbe(t, "-f", fx.manifest, "-o", "json")
	if code != 1 { // "down" is Unknown
		t.Errorf("exit %d, want 1; stderr %s", code, errOut)
	}
	var report []plan.NodeStatus
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(report) != 2 || report[0].Name != "m1" || report[1].Name != "down" {
		t.Fatalf("report = %+v", report)
	}
	m1, down := report[0], report[1]
	// The daemon's status model (reconciler.StatusOf): what is left on
	// the node is a pending remove.
	want := []plan.ComponentStatus{
		{Name: "app", DesiredVersion: "1.0", ObservedVersion: "1.0", Sync: plan.Synced, Health: plan.Healthy},
		{Name: "legacy", ObservedVersion: "0.1", Sync: plan.OutOfSync, Health: plan.Healthy, Reason: "remove 0.1 pending (not in the manifest)"},
	}
	var got []plan.ComponentStatus
	for _, c := range m1.Components {
		got = append(got, plan.ComponentStatus{Name: c.Name, DesiredVersion: c.DesiredVersion, ObservedVersion: c.ObservedVersion, Sync: c.Sync, Health: c.Health, Reason: c.Reason})
	}
	if !m1.Reachable || fmt.Sprint(got) != fmt.Sprint(want) || m1.Converged {
		t.Errorf("m1 = %+v\ncomponents %+v\nwant       %+v", m1, got, want)
	}
	if down.Reachable || !strings.HasPrefix(down.ProbeError, "unreachable: ") || !strings.HasPrefix(down.Reason, "unreachable (") {
		t.Errorf("down = %+v", down)
	}

	// Drift in the rendered file, seen in the table, for one node.
	fx.install(t, "node=someone-else\n")
	code, out, errOut = runProbe(t, "-f", fx.manifest, "--node", "m1")
	if code != 0 {
		t.Errorf("exit %d, want 0 (m1 reachable); stderr %s", code, errOut)
	}
	t.Logf("table:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NODE") {
		t.Fatalf("table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 7 || f[0] != "m1" || f[1] != "app" || f[4] != "OutOfSync" || f[5] != "Healthy" || !strings.Contains(lines[1], "app.cfg changed on disk") {
		t.Errorf("app row = %q", lines[1])
	}
	if strings.Contains(out, "down") {
		t.Errorf("--node m1 probed other nodes:\n%s", out)
	}
}

func TestProbeCommandFlags(t *testing.T) {
	fx := newProbeFixture(t)
	if code, _, errOut := runProbe(t, "-f", fx.manifest, "--node", "nope"); code != 1 || !strings.Contains(errOut, "no such node") {
		t.Errorf("unknown node: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runProbe(t, "-f", fx.manifest, "-o", "table"); code != 1 || !strings.Contains(errOut, "must be one of text, json, yaml") {
		t.Errorf("bad -o: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runProbe(t); code != 1 || !strings.Contains(errOut, "file") {
		t.Errorf("no -f: exit %d, %s", code, errOut)
	}
}
