package e2edaemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

// component is the name of node_exporter in the test manifests.
const component = "node-exporter"

// spec is what a test varies in its manifest.
type spec struct {
	version        string // node_exporter version: 1.8.2 or 1.9.1
	maxUnavailable string // default 3: all at once, where order is not the point
	comment        string // a new generation with the same meaning
	probeInterval  string // default 5s
	// preStop, when set, is a shell command run as the unit's preStop
	// hook (before drover stops or restarts it): a node-side cause a
	// test can break and fix.
	preStop string
}

// pair is the version most nodes run now (1.9.1 when none does) and the
// other one: starting each test from what the last one left spares a
// rollout.
func (s *suite) pair() (from, to string) {
	old := 0
	for _, v := range s.versions() {
		if v == s.old.Version {
			old++
		}
	}
	if 2*old > len(s.c.Nodes) {
		return s.old.Version, s.new.Version
	}
	return s.new.Version, s.old.Version
}

func (s *suite) artifact(version string) harness.Artifact {
	if version == s.old.Version {
		return s.old
	}
	return s.new
}

// manifest renders the cluster's manifest: node_exporter on every node,
// listening on the node's own address, probed every 5s.
func (s *suite) manifest(sp spec) string {
	a := s.artifact(sp.version)
	if sp.maxUnavailable == "" {
		sp.maxUnavailable = "3"
	}
	if sp.probeInterval == "" {
		sp.probeInterval = "5s"
	}
	hooks := ""
	if sp.preStop != "" {
		hooks = fmt.Sprintf("      hooks:\n        preStop:\n          command: [/bin/sh, -c, %q]\n          timeout: 10s\n", sp.preStop)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\napiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: e2edaemon\nspec:\n  installRoot: /opt/drover\n  probeInterval: %s\n", sp.comment, sp.probeInterval)
	b.WriteString(harness.Indent(s.c.SSHYAML(), 2))
	b.WriteString(harness.Indent(s.c.NodesYAML(func(int) []string { return []string{"node"} }), 2))
	fmt.Fprintf(&b, `  components:
    - name: %s
      version: %q
      artifact:
        path: %s
        sha256: %q
      service:
        exec: "{{ .Dir }}/bin/node_exporter --web.listen-address={{ .Node.Address }}:9100 --collector.disable-defaults --collector.loadavg"
        user: nobody
      health:
        http: {port: 9100, path: /metrics}
        timeout: 5s
%s  rollout:
    maxUnavailable: %s
    healthTimeout: 3m
    onFailure: rollback
`, component, a.Version, a.Path, a.SHA256, hooks, sp.maxUnavailable)
	return b.String()
}

// writeManifest writes the manifest for sp to path.
func (s *suite) writeManifest(t *testing.T, path string, sp spec) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s.manifest(sp)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDaemon runs `drover daemon -f manifest` on a free loopback port,
// its JSON log in the suite's work dir, and waits until it serves. The
// test's cleanup stops it.
func (s *suite) startDaemon(t *testing.T, manifest string) *daemonproc.Daemon {
	t.Helper()
	return daemonproc.Start(t, daemonproc.Options{Binary: s.drover, Manifest: manifest, LockDir: s.lockDir, LogDir: s.work})
}

// hasMetric reports whether the exposition has exactly this sample line.
func hasMetric(exposition, line string) bool {
	return strings.Contains("\n"+exposition, "\n"+line+"\n")
}

var buildInfoRE = regexp.MustCompile(`node_exporter_build_info\{[^}]*version="([^"]+)"`)

// nodeVersion is the version node_exporter reports on the node itself.
func nodeVersion(n harness.Node) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + n.Address + ":9100/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	m := buildInfoRE.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no node_exporter_build_info", n.Name)
	}
	return string(m[1]), nil
}

// versions is what each node's node_exporter reports ("down: ..." when
// it does not answer).
func (s *suite) versions() map[string]string {
	out := map[string]string{}
	for _, n := range s.c.Nodes {
		v, err := nodeVersion(n)
		if err != nil {
			v = "down: " + err.Error()
		}
		out[n.Name] = v
	}
	return out
}

// converged reports whether the daemon says every node runs version,
// converged, and every node's node_exporter says so too.
func (s *suite) converged(d *daemonproc.Daemon, version string) bool {
	st := d.Status()
	if len(st.Nodes) != len(s.c.Nodes) {
		return false
	}
	for _, n := range st.Nodes {
		if !n.Converged || len(n.Components) != 1 || n.Components[0].ObservedVersion != version {
			return false
		}
	}
	for _, v := range s.versions() {
		if v != version {
			return false
		}
	}
	return true
}

// waitConverged waits for converged(version), reporting where each node
// is if it does not come.
func (s *suite) waitConverged(t *testing.T, d *daemonproc.Daemon, version string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !s.converged(d, version) {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range d.Status().Nodes {
				fmt.Fprintf(&b, "\n  %s converged=%v reason=%q", n.Name, n.Converged, n.Reason)
			}
			t.Fatalf("cluster not converged on %s after %s; nodes report %v; status:%s", version, within, s.versions(), b.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// actionCount is how many actions the daemon has recorded per node.
func actionCount(st plan.ClusterStatus) map[string]int {
	out := map[string]int{}
	for _, n := range st.Nodes {
		out[n.Name] = len(n.History)
	}
	return out
}

// nodeState is the installed truth on a node, read over SSH: the active
// link, the receipt's version and the unit's state.
func (s *suite) nodeState(t *testing.T, node string) (active, receipt, unit string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.c.Exec(ctx, node, `readlink /opt/drover/active/`+component+`; `+
		`sed -n 's/.*"version":"\([^"]*\)".*/\1/p' /opt/drover/receipts/`+component+`.json; `+
		`systemctl is-active drover-`+component+`.service || true`)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(out), "\n")
	for len(f) < 3 {
		f = append(f, "")
	}
	return filepath.Base(f[0]), f[1], f[2]
}
