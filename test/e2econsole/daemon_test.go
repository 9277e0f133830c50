package e2econsole

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

// component is node_exporter's name in the test manifests.
const component = "node-exporter"

// manifest is node_exporter at version on every node, one node at a time
// (so a rollout is there to be seen), probed every 3s. Each node has a
// role and a label for the node page to show.
func (s *suite) manifest(version string) string {
	a := s.old
	if version == s.new.Version {
		a = s.new
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: e2econsole\nspec:\n  installRoot: /opt/drover\n  probeInterval: 3s\n")
	b.WriteString(harness.Indent(s.c.SSHYAML(), 2))
	b.WriteString("  nodes:\n")
	for i, n := range s.c.Nodes {
		fmt.Fprintf(&b, "    - {name: %s, address: %s, port: %d, roles: [node], labels: {zone: z%d}}\n", n.Name, n.Address, n.Port, i%2+1)
	}
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
  rollout:
    maxUnavailable: 1
    healthTimeout: 3m
    onFailure: rollback
`, component, a.Version, a.Path, a.SHA256)
	return b.String()
}

func (s *suite) writeManifest(t *testing.T, path, version string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s.manifest(version)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDaemon runs `drover daemon -f manifest` with a generated token,
// its log kept among the artifacts, and returns it with the console URL
// it printed. The test's cleanup stops it.
func (s *suite) startDaemon(t *testing.T, manifest, artifacts string) (*daemonproc.Daemon, string) {
	t.Helper()
	d := daemonproc.Start(t, daemonproc.Options{Binary: s.drover, Manifest: manifest,
		LockDir: filepath.Join(s.work, "lock"), LogPath: filepath.Join(artifacts, "daemon.log")})
	return d, d.ConsoleURL()
}
