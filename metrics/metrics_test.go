package metrics

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/reconciler/plan"
)

func TestStatusCollectorExposition(t *testing.T) {
	c := newStatusCollector(sampleStatus, func() int { return 3 })
	want := `
# HELP drover_component_info A metric with a constant value of 1 for each component on each node, labelled by its desired and observed versions, sync and health.
# TYPE drover_component_info gauge
drover_component_info{component="node-exporter",desired_version="1.9.1",health="Healthy",node="a2",observed_version="1.8.2",sync="OutOfSync"} 1
drover_component_info{component="nginx",desired_version="",health="Healthy",node="a2",observed_version="1.24.0",sync="OutOfSync"} 1
drover_component_info{component="node-exporter",desired_version="1.9.1",health="Unknown",node="a1",observed_version="",sync="Unknown"} 1
drover_component_info{component="zookeeper",desired_version="3.8.0",health="Healthy",node="m1",observed_version="3.8.0",sync="Synced"} 1
drover_component_info{component="zookeeper",desired_version="3.8.1",health="Degraded",node="m2",observed_version="3.8.0",sync="OutOfSync"} 1
# HELP drover_manifest_generation Generation of the manifest in force; it counts accepted manifest changes.
# TYPE drover_manifest_generation gauge
drover_manifest_generation 4
# HELP drover_manifest_last_load_timestamp_seconds Unix time the manifest in force was loaded, or 0 if none was.
# TYPE drover_manifest_last_load_timestamp_seconds gauge
drover_manifest_last_load_timestamp_seconds 1714557600
# HELP drover_manifest_load_success Whether the last attempt to load the manifest succeeded (1) or was rejected (0).
# TYPE drover_manifest_load_success gauge
drover_manifest_load_success 1
# HELP drover_node_converged Whether the node is reachable and every component on it is Synced and Healthy (1) or not (0).
# TYPE drover_node_converged gauge
drover_node_converged{node="a1"} 0
drover_node_converged{node="a2"} 0
drover_node_converged{node="m1"} 1
drover_node_converged{node="m2"} 0
# HELP drover_node_last_converged_timestamp_seconds Unix time the node was last seen converged, or 0 if it never was.
# TYPE drover_node_last_converged_timestamp_seconds gauge
drover_node_last_converged_timestamp_seconds{node="a1"} 0
drover_node_last_converged_timestamp_seconds{node="a2"} 0
drover_node_last_converged_timestamp_seconds{node="m1"} 1714557900.5
drover_node_last_converged_timestamp_seconds{node="m2"} 1714557600
# HELP drover_node_last_probe_timestamp_seconds Unix time of the last successful probe of the node, or 0 if it never was probed successfully.
# TYPE drover_node_last_probe_timestamp_seconds gauge
drover_node_last_probe_timestamp_seconds{node="a1"} 0
drover_node_last_probe_timestamp_seconds{node="a2"} 1714557900.5
drover_node_last_probe_timestamp_seconds{node="m1"} 1714557900.5
drover_node_last_probe_timestamp_seconds{node="m2"} 1714557900.5
# HELP drover_node_reachable Whether the last probe of the node over SSH succeeded (1) or not (0).
# TYPE drover_node_reachable gauge
drover_node_reachable{node="a1"} 0
drover_node_reachable{node="a2"} 1
drover_node_reachable{node="m1"} 1
drover_node_reachable{node="m2"} 1
# HELP drover_nodes Number of nodes in each state: converged, not_converged, unreachable, or paused (not converged while drover changes nothing).
# TYPE drover_nodes gauge
drover_nodes{state="converged"} 1
drover_nodes{state="not_converged"} 1
drover_nodes{state="paused"} 1
drover_nodes{state="unreachable"} 1
# HELP drover_paused Whether the manifest pauses drover, so that it probes and reports but changes nothing (1), or not (0).
# TYPE drover_paused gauge
drover_paused 0
# HELP drover_rollout_halted Whether the rollout is halted after a failed health gate (1) or not (0).
# TYPE drover_rollout_halted gauge
drover_rollout_halted 1
# HELP drover_rollout_halted_info A metric with a constant value of 1 while the rollout is halted, labelled by the node and component it halted on.
# TYPE drover_rollout_halted_info gauge
drover_rollout_halted_info{component="zookeeper",node="m2"} 1
# HELP drover_ssh_connections Number of SSH connections open in the pool.
# TYPE drover_ssh_connections gauge
drover_ssh_connections 3
# HELP drover_suspended Whether the operator suspended drover (drover suspend), so that it probes and reports but starts no action until drover resume (1), or not (0).
# TYPE drover_suspended gauge
drover_suspended 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestNodesEmitsEveryStateEvenWhenEmpty(t *testing.T) {
	empty := func() plan.ClusterStatus { return plan.ClusterStatus{Paused: true} }
	c := newStatusCollector(empty, nil)
	want := `
# HELP drover_nodes Number of nodes in each state: converged, not_converged, unreachable, or paused (not converged while drover changes nothing).
# TYPE drover_nodes gauge
drover_nodes{state="converged"} 0
drover_nodes{state="not_converged"} 0
drover_nodes{state="paused"} 0
drover_nodes{state="unreachable"} 0
# HELP drover_paused Whether the manifest pauses drover, so that it probes and reports but changes nothing (1), or not (0).
# TYPE drover_paused gauge
drover_paused 1
# HELP drover_ssh_connections Number of SSH connections open in the pool.
# TYPE drover_ssh_connections gauge
drover_ssh_connections 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "drover_nodes", "drover_paused", "drover_ssh_connections"); err != nil {
		t.Fatal(err)
	}
	// A rollout that is not halted has no info series at all.
	if n := testutil.CollectAndCount(c, "drover_rollout_halted_info"); n != 0 {
		t.Errorf("drover_rollout_halted_info: %d series, want 0", n)
	}
}

func TestClusterPauseCountsUnconvergedNodesAsPaused(t *testing.T) {
	s := sampleStatus()
	s.Paused = true
	c := newStatusCollector(func() plan.ClusterStatus { return s }, nil)
	// m2 (not converged) joins a2 as paused; m1 stays converged and a1
	// unreachable.
	want := `
# HELP drover_nodes Number of nodes in each state: converged, not_converged, unreachable, or paused (not converged while drover changes nothing).
# TYPE drover_nodes gauge
drover_nodes{state="converged"} 1
drover_nodes{state="not_converged"} 0
drover_nodes{state="paused"} 2
drover_nodes{state="unreachable"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "drover_nodes"); err != nil {
		t.Fatal(err)
	}
}

func TestRemovedNodeLeavesNoSeries(t *testing.T) {
	var mu sync.Mutex
	status := sampleStatus()
	snapshot := func() plan.ClusterStatus {
		mu.Lock()
		defer mu.Unlock()
		return status
	}
	reg := prometheus.NewPedanticRegistry()
	New(reg, snapshot, nil)

	if n := seriesWithLabel(t, reg, "node", "m2"); n == 0 {
		t.Fatal("m2 has no series before its removal")
	}
	mu.Lock()
	status.Nodes = slices.DeleteFunc(status.Nodes, func(n plan.NodeStatus) bool { return n.Name == "m2" })
	status.Rollout = plan.RolloutStatus{}
	mu.Unlock()

	if n := seriesWithLabel(t, reg, "node", "m2"); n != 0 {
		t.Errorf("m2 still has %d series after its removal", n)
	}
	want := `
# HELP drover_nodes Number of nodes in each state: converged, not_converged, unreachable, or paused (not converged while drover changes nothing).
# TYPE drover_nodes gauge
drover_nodes{state="converged"} 1
drover_nodes{state="not_converged"} 0
drover_nodes{state="paused"} 1
drover_nodes{state="unreachable"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drover_nodes"); err != nil {
		t.Error(err)
	}
}

// seriesWithLabel counts the gathered series that carry name=value.
func seriesWithLabel(t *testing.T, g prometheus.Gatherer, name, value string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == value {
					n++
				}
			}
		}
	}
	return n
}

func TestObserveUpdatesCountersAndHistograms(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, sampleStatus, nil, WithBuildInfo("1.2.3", "abc123"))

	m.ObserveReconcile(ResultSuccess, 2*time.Second)
	m.ObserveReconcile(ResultSuccess, time.Second)
	m.ObserveAction("upgrade", "zookeeper", ResultFailure, 90*time.Second)
	m.ObserveAction("upgrade", "zookeeper", ResultSuccess, 30*time.Second)
	m.ObserveAction("install", "nginx", ResultSuccess, 5*time.Second)
	m.ObserveProbe(50*time.Millisecond, "")
	m.ObserveProbe(10*time.Second, "timeout")
	m.SetProbeInterval(30 * time.Second)

	want := fmt.Sprintf(`
# HELP drover_actions_total Number of actions run on nodes, by action kind, component and result.
# TYPE drover_actions_total counter
drover_actions_total{action="install",component="nginx",result="success"} 1
drover_actions_total{action="upgrade",component="zookeeper",result="failure"} 1
drover_actions_total{action="upgrade",component="zookeeper",result="success"} 1
# HELP drover_build_info A metric with a constant value of 1, labelled by the version, revision and Go version drover was built from.
# TYPE drover_build_info gauge
drover_build_info{goversion=%q,revision="abc123",version="1.2.3"} 1
# HELP drover_probe_errors_total Number of node probes that failed, by reason.
# TYPE drover_probe_errors_total counter
drover_probe_errors_total{reason="timeout"} 1
# HELP drover_probe_interval_seconds Configured interval between two probes of the same node.
# TYPE drover_probe_interval_seconds gauge
drover_probe_interval_seconds 30
# HELP drover_reconcile_total Number of node reconciles (probe, diff and actions) finished, by result.
# TYPE drover_reconcile_total counter
drover_reconcile_total{result="failure"} 0
drover_reconcile_total{result="success"} 2
`, runtime.Version())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"drover_actions_total", "drover_build_info", "drover_probe_errors_total",
		"drover_probe_interval_seconds", "drover_reconcile_total"); err != nil {
		t.Fatal(err)
	}

	hist := histograms(t, reg)
	for _, tc := range []struct {
		name   string
		labels string
		count  uint64
		sum    float64
	}{
		{"drover_reconcile_duration_seconds", "", 2, 3},
		{"drover_action_duration_seconds", "action=upgrade", 2, 120},
		{"drover_action_duration_seconds", "action=install", 1, 5},
		{"drover_probe_duration_seconds", "", 2, 10.05},
	} {
		h, ok := hist[tc.name+"{"+tc.labels+"}"]
		if !ok {
			t.Errorf("%s{%s}: not gathered", tc.name, tc.labels)
			continue
		}
		if h.count != tc.count || h.sum != tc.sum {
			t.Errorf("%s{%s}: count %d sum %g, want %d and %g", tc.name, tc.labels, h.count, h.sum, tc.count, tc.sum)
		}
	}
}

type histSample struct {
	count uint64
	sum   float64
}

// histograms indexes every gathered histogram by name{label=value,...}.
func histograms(t *testing.T, g prometheus.Gatherer) map[string]histSample {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]histSample{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = histSample{h.GetSampleCount(), h.GetSampleSum()}
		}
	}
	return out
}

// fullRegistry is a registry as the daemon builds it, with every labelled
// family given at least one series so that all of them are gathered.
func fullRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := NewRegistry()
	m := New(reg, sampleStatus, func() int { return 2 }, WithBuildInfo("1.2.3", "abc123"))
	m.ObserveReconcile(ResultFailure, time.Second)
	m.ObserveAction("install", "zookeeper", ResultSuccess, time.Second)
	m.ObserveProbe(time.Second, inventory.ReasonUnreachable)
	m.SetProbeInterval(30 * time.Second)
	return reg
}

// TestMetricNamesGolden pins every drover metric name, type and label set:
// they are a contract with dashboards and alert rules. Run with -update
// after an intended change, and keep docs/METRICS.md in step.
func TestMetricNamesGolden(t *testing.T) {
	mfs, err := fullRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "drover_") {
			continue
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		line := mf.GetName() + " " + strings.ToLower(mf.GetType().String())
		if len(labels) > 0 {
			line += " " + strings.Join(slices.Sorted(maps.Keys(labels)), ",")
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"

	if *update {
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("metric names and labels differ from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", goldenPath, got, want)
	}
}

// TestDesignContractNames checks that every name docs/DESIGN.md promises is
// exported, so the golden file cannot drift away from the contract.
func TestDesignContractNames(t *testing.T) {
	names := goldenNames(t)
	for _, n := range []string{
		"drover_manifest_generation", "drover_manifest_load_success", "drover_manifest_last_load_timestamp_seconds",
		"drover_nodes", "drover_node_converged", "drover_node_last_converged_timestamp_seconds",
		"drover_node_reachable", "drover_component_info", "drover_reconcile_total",
		"drover_reconcile_duration_seconds", "drover_actions_total", "drover_action_duration_seconds",
		"drover_probe_duration_seconds", "drover_probe_errors_total", "drover_ssh_connections",
		"drover_rollout_halted", "drover_paused", "drover_build_info",
	} {
		if !names[n] {
			t.Errorf("%s is in the design's metric contract but not exported", n)
		}
	}
	doc, err := os.ReadFile("../docs/DESIGN.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "\n## Metrics")
	section, _, _ = strings.Cut(section, "\n## ")
	promised := regexp.MustCompile("`(drover_[a-z_]+)").FindAllStringSubmatch(section, -1)
	if len(promised) == 0 {
		t.Fatal("docs/DESIGN.md: no metric names in its Metrics section")
	}
	for _, m := range promised {
		if !names[m[1]] {
			t.Errorf("docs/DESIGN.md promises %s, which is not exported", m[1])
		}
	}
	mfs, err := fullRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var goSeen, processSeen bool
	for _, mf := range mfs {
		goSeen = goSeen || strings.HasPrefix(mf.GetName(), "go_")
		processSeen = processSeen || strings.HasPrefix(mf.GetName(), "process_")
	}
	if !goSeen || !processSeen {
		t.Errorf("NewRegistry: go collector seen %v, process collector seen %v; want both", goSeen, processSeen)
	}
}

// TestExpositionPassesPromtool lints the whole exposition, Go and process
// collectors included, as `promtool check metrics` does in CI.
func TestExpositionPassesPromtool(t *testing.T) {
	reg := fullRegistry(t)
	text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain)
	if err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, "", text, "check", "metrics")
	if strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics: %s", out)
	}
}

func TestNewPanicsOnSecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, sampleStatus, nil)
	defer func() {
		if recover() == nil {
			t.Error("second New on one registry did not panic")
		}
	}()
	New(reg, sampleStatus, nil)
}

// TestWithoutNodeSeries: for a huge fleet the node-labelled series go and
// the aggregates stay, with the same values.
func TestWithoutNodeSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	New(reg, sampleStatus, func() int { return 3 }, WithoutNodeSeries())
	for _, name := range []string{"drover_node_converged", "drover_node_reachable", "drover_node_last_probe_timestamp_seconds",
		"drover_node_last_converged_timestamp_seconds", "drover_component_info"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 0 {
			t.Errorf("%s: %d series (%v), want none", name, n, err)
		}
	}
	full := prometheus.NewPedanticRegistry()
	New(full, sampleStatus, func() int { return 3 })
	for _, name := range []string{"drover_nodes", "drover_ssh_connections", "drover_manifest_generation"} {
		want, err := testutil.GatherAndCount(full, name)
		if err != nil || want == 0 {
			t.Fatalf("%s: %d series in the full registry (%v)", name, want, err)
		}
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}
	var got, want strings.Builder
	for _, r := range []struct {
		reg *prometheus.Registry
		out *strings.Builder
	}{{reg, &got}, {full, &want}} {
		mfs, err := r.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "drover_nodes" {
				fmt.Fprint(r.out, mf.GetMetric())
			}
		}
	}
	if got.String() != want.String() {
		t.Errorf("drover_nodes differs without node series:\n got %s\nwant %s", got.String(), want.String())
	}
}
