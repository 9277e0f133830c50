package metrics

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden and the rules block of docs/ALERTS.md")

const goldenPath = "testdata/metrics.golden"

// promtool returns the path of promtool, or skips the test when it is not
// installed.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed: `make deps` installs Debian's prometheus package, which provides it")
	}
	return p
}

// runPromtool runs promtool with args in dir, feeding stdin, and fails the
// test with its output if it exits non-zero.
func runPromtool(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// goldenNames reads the metric family names of testdata/metrics.golden.
func goldenNames(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		names[strings.Fields(line)[0]] = true
	}
	return names
}

// recordedNames returns the names of the recording rules in alerts.yaml.
func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, r := range loadRules(t, AlertRules) {
		if r.Record != "" {
			names[r.Record] = true
		}
	}
	return names
}

// metricRef finds drover metric names, raw or recorded, in PromQL.
var metricRef = regexp.MustCompile(`drover[_:][a-z0-9_:]*[a-z0-9]`)

// checkMetricRefs fails for each drover metric expr uses that drover does not
// export and no recording rule defines: a typo there is an alert that can
// never fire or a dashboard panel that stays empty.
func checkMetricRefs(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, ref := range metricRef.FindAllString(expr, -1) {
		name := ref
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(ref, suffix); ok && known[base] {
				name = base
			}
		}
		if !known[name] {
			t.Errorf("%s: uses %s, which is neither exported nor recorded", where, ref)
		}
	}
}

// knownNames is every drover metric or recorded series a query may use.
func knownNames(t *testing.T) map[string]bool {
	t.Helper()
	known := goldenNames(t)
	for n := range recordedNames(t) {
		known[n] = true
	}
	for _, n := range HANames { // only a daemon of several exports them (ha.go)
		known[n] = true
	}
	return known
}

// writeRulesFile writes one group of recording rules, one per expr, so that
// promtool can check that each expr parses.
func writeRulesFile(t *testing.T, exprs []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("groups:\n  - name: check\n    rules:\n")
	for i, e := range exprs {
		b.WriteString("      - record: check:expr" + strconv.Itoa(i) + "\n        expr: |\n")
		for _, line := range strings.Split(e, "\n") {
			b.WriteString("          " + line + "\n")
		}
	}
	p := filepath.Join(t.TempDir(), "exprs.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sampleStatus is a cluster with a node in every state, a halted rollout
// and a component in each interesting sync/health pair.
func sampleStatus() plan.ClusterStatus {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)   // 1714557600
	t1 := time.Date(2024, 5, 1, 10, 5, 0, 5e8, time.UTC) // 1714557900.5
	return plan.ClusterStatus{
		Cluster:      "test",
		Generation:   4,
		LoadSuccess:  true,
		LastLoadTime: t0,
		Suspended:    true,
		Rollout:      plan.RolloutStatus{Halted: true, Node: "m2", Component: "zookeeper", Reason: "health check failed"},
		Nodes: []plan.NodeStatus{
			{
				Name: "m1", Reachable: true, Converged: true, LastProbe: t1, LastConverged: t1,
				Components: []plan.ComponentStatus{
					{Name: "zookeeper", DesiredVersion: "3.8.0", ObservedVersion: "3.8.0", Sync: plan.Synced, Health: plan.Healthy},
				},
			},
			{
				Name: "m2", Reachable: true, LastProbe: t1, LastConverged: t0, Reason: "zookeeper unhealthy",
				Components: []plan.ComponentStatus{
					{Name: "zookeeper", DesiredVersion: "3.8.1", ObservedVersion: "3.8.0", Sync: plan.OutOfSync, Health: plan.Degraded},
				},
			},
			{
				// Converged from before it went away: unreachable wins.
				Name: "a1", Reachable: false, Converged: true, Reason: "dial tcp: i/o timeout",
				Components: []plan.ComponentStatus{
					{Name: "node-exporter", DesiredVersion: "1.9.1", Sync: plan.SyncUnknown, Health: plan.HealthUnknown},
				},
			},
			{
				Name: "a2", Reachable: true, Paused: true, LastProbe: t1,
				Components: []plan.ComponentStatus{
					{Name: "node-exporter", DesiredVersion: "1.9.1", ObservedVersion: "1.8.2", Sync: plan.OutOfSync, Health: plan.Healthy},
					{Name: "nginx", ObservedVersion: "1.24.0", Sync: plan.OutOfSync, Health: plan.Healthy},
				},
			},
		},
	}
}
