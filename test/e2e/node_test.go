package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/test/harness"
)

// exec runs a shell command on a node and fails the test on error.
func (s *suite) exec(t *testing.T, node harness.Node, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.c.Exec(ctx, node.Name, command)
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", node.Name, command, err, out)
	}
	return out
}

// onEach runs f for every node in parallel.
func onEach(nodes []harness.Node, f func(harness.Node)) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(n)
		}()
	}
	wg.Wait()
}

// wipeScript removes everything drover and the components put on a node:
// units, install root, ZooKeeper's data and the master list.
const wipeScript = `set -u
units=$(cd /etc/systemd/system && ls drover-*.service 2>/dev/null || true)
for u in $units; do systemctl disable --now "$u" >/dev/null 2>&1 || true; done
rm -f /etc/systemd/system/drover-*.service
systemctl daemon-reload
for u in $units; do systemctl reset-failed "$u" >/dev/null 2>&1 || true; done
rm -rf /opt/drover /var/lib/zookeeper /etc/dcos
`

// wipe takes every node back to a fresh machine, as far as drover knows.
func (s *suite) wipe(t *testing.T) {
	t.Helper()
	start := time.Now()
	errs := make(chan error, len(s.nodes()))
	onEach(s.nodes(), func(n harness.Node) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := s.c.Exec(ctx, n.Name, wipeScript); err != nil {
			errs <- fmt.Errorf("%s: %w\n%s", n.Name, err, out)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("wipe: %v", err)
	}
	t.Logf("wiped %d nodes in %v", len(s.nodes()), since(start))
}

// baseline applies the base manifest (a no-op when the cluster already
// matches it) and returns its path.
func (s *suite) baseline(t *testing.T) string {
	t.Helper()
	m := s.write(t, s.base())
	start := time.Now()
	s.mustApply(t, m)
	t.Logf("baseline in %v", since(start))
	return m
}

// current is the base manifest with the node_exporter version the first
// node runs now, so a test that does not care spares a rollout.
func (s *suite) current(t *testing.T) spec {
	t.Helper()
	sp := s.base()
	newer := s.arts[harness.ArtifactNodeExporterNew]
	if rc := s.receipt(t, s.nodes()[0], "node-exporter"); rc != nil && rc.Version == newer.Version {
		sp = sp.withNodeExporter(newer)
	}
	return sp
}

// receipt reads a component's receipt on a node; nil when there is none.
func (s *suite) receipt(t *testing.T, n harness.Node, comp string) *probes.Receipt {
	t.Helper()
	out := s.exec(t, n, fmt.Sprintf("cat %s/receipts/%s.json 2>/dev/null || true", installRoot, comp))
	if strings.TrimSpace(out) == "" {
		return nil
	}
	var r probes.Receipt
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%s: receipt of %s: %v\n%s", n.Name, comp, err, out)
	}
	return &r
}

// active is where a component's active link points ("" if none).
func (s *suite) active(t *testing.T, n harness.Node, comp string) string {
	t.Helper()
	return strings.TrimSpace(s.exec(t, n, fmt.Sprintf("readlink %s/active/%s || true", installRoot, comp)))
}

// unitState is "ActiveState/SubState LoadState MainPID" of a component's unit.
func (s *suite) unitState(t *testing.T, n harness.Node, comp string) (active, load string, pid string) {
	t.Helper()
	out := s.exec(t, n, fmt.Sprintf("systemctl show -p ActiveState -p LoadState -p MainPID drover-%s.service", comp))
	kv := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			kv[k] = v
		}
	}
	return kv["ActiveState"], kv["LoadState"], kv["MainPID"]
}

// footprint lists what drover keeps of a node: every path under the
// install root with type, size, mtime and link target (the lock file
// aside), the unit files with their sha256, and each drover unit's state
// and main pid. Two equal footprints mean drover changed nothing there.
func (s *suite) footprint(t *testing.T, n harness.Node) string {
	t.Helper()
	return s.exec(t, n, fmt.Sprintf(`cd %s 2>/dev/null && find . ! -path ./lock -printf '%%p %%y %%s %%T@ %%l\n' | sort
cd /etc/systemd/system && for u in drover-*.service; do [ -e "$u" ] || continue
	echo "$(sha256sum "$u") $(systemctl show -p ActiveState -p MainPID --value "$u" | tr '\n' ' ')"
done`, installRoot))
}

var buildInfoRE = regexp.MustCompile(`(?m)^node_exporter_build_info\{[^}]*version="([^"]+)"`)

// exporterVersion fetches a node's own address :9100/metrics from the
// host and returns the version node_exporter_build_info reports.
func exporterVersion(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(addr, "9100")+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := buildInfoRE.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("no node_exporter_build_info in /metrics")
	}
	return string(m[1]), nil
}

// requireExporters checks that node_exporter answers on each node's own
// address with the wanted version.
func requireExporters(t *testing.T, nodes []harness.Node, want string) {
	t.Helper()
	for _, n := range nodes {
		got, err := exporterVersion(context.Background(), n.Address)
		if err != nil {
			t.Errorf("%s: node_exporter on %s:9100: %v", n.Name, n.Address, err)
			continue
		}
		if got != want {
			t.Errorf("%s: node_exporter on %s:9100 is %s, want %s", n.Name, n.Address, got, want)
		}
	}
}

// zkAddrs are the client addresses of the ensemble.
func (s *suite) zkAddrs() []string {
	var out []string
	for _, n := range s.masters {
		out = append(out, net.JoinHostPort(n.Address, "2181"))
	}
	return out
}

// requireEnsemble checks that every master serves, exactly one as leader.
func (s *suite) requireEnsemble(t *testing.T) {
	t.Helper()
	leaders := 0
	for _, addr := range s.zkAddrs() {
		mode, err := zkMode(context.Background(), addr)
		if err != nil {
			t.Errorf("zookeeper %s: %v", addr, err)
			continue
		}
		switch mode {
		case "leader":
			leaders++
		case "follower":
		default:
			t.Errorf("zookeeper %s: mode %s, want leader or follower", addr, mode)
		}
	}
	if leaders != 1 {
		t.Errorf("ensemble has %d leaders, want exactly 1", leaders)
	}
}
