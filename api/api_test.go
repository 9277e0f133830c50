package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drover-project/drover/metrics"
	"github.com/drover-project/drover/reconciler/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource is a cluster of two nodes: m1 converged, a1 unreachable with
// an upgrade of app pending and a failed action in its history.
type fakeSource struct{ ready atomic.Bool }

var (
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(30 * time.Second)
)

func (f *fakeSource) Status() plan.ClusterStatus {
	failed := plan.ActionRecord{Time: t0, Action: "upgrade", Component: "app", Version: "2.0", Result: "failure",
		Message: "upgrade app on a1: step upload artifact: exit 1: no space left on device", Duration: 1500 * time.Millisecond}
	return plan.ClusterStatus{
		Cluster: "prod-east", Generation: 3, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		LoadSuccess: false, LoadError: "cluster.yaml: spec.components[0].version: must not be empty", LastLoadTime: t0,
		Rollout: plan.RolloutStatus{Halted: true, Reason: "upgrade app 1.0 -> 2.0 on a1 failed its health check", Component: "app", Node: "a1", Generation: "9f86d081"},
		Nodes: []plan.NodeStatus{
			{
				Name: "m1", Address: "127.0.2.1", Reachable: true, Converged: true, ObservedGeneration: "9f86d081",
				LastProbe: t1, LastConverged: t1,
				Components: []plan.ComponentStatus{{Name: "zk", DesiredVersion: "3.8.0", ObservedVersion: "3.8.0", Sync: plan.Synced, Health: plan.Healthy}},
			},
			{
				Name: "a1", Address: "127.0.2.11", Reason: "dial: connection refused", LastProbe: t0,
				ConsecutiveFailures: 4, LastAction: &failed, History: []plan.ActionRecord{failed},
				Components: []plan.ComponentStatus{{Name: "app", DesiredVersion: "2.0", Sync: plan.SyncUnknown, Health: plan.HealthUnknown, Reason: "dial: connection refused"}},
			},
		},
	}
}

func (f *fakeSource) CurrentPlan() plan.Plan {
	return plan.Plan{Generation: "9f86d081", Nodes: []plan.NodePlan{
		{Node: "m1", Address: "127.0.2.1", Known: true, Actions: []plan.Action{
			{Node: "m1", Component: "zk", Kind: plan.ActionUpgrade, From: "3.8.0", To: "3.8.4", Reason: "version changed in manifest", Disruptive: true},
		}},
		{Node: "a1", Address: "127.0.2.11", Reason: "dial: connection refused"},
	}}
}

func (f *fakeSource) Ready() bool { return f.ready.Load() }

// server serves the API for src with the real metrics registered.
func server(t *testing.T, src *fakeSource) *httptest.Server {
	t.Helper()
	reg := metrics.NewRegistry()
	m := metrics.New(reg, src.Status, func() int { return 2 }, metrics.WithBuildInfo("1.2.3", "abc123"))
	m.SetProbeInterval(30 * time.Second)
	m.ObserveReconcile(metrics.ResultSuccess, 200*time.Millisecond)
	m.ObserveAction("upgrade", "app", metrics.ResultFailure, 1500*time.Millisecond)
	m.ObserveProbe(3*time.Second, "unreachable")
	srv := httptest.NewServer(Handler(src, reg))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHealthz(t *testing.T) {
	srv := server(t, &fakeSource{})
	resp, body := get(t, srv.URL+PathHealthz)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
}

// TestReadyz: 503 until the first probe round is done, 200 after.
func TestReadyz(t *testing.T) {
	src := &fakeSource{}
	srv := server(t, src)
	resp, body := get(t, srv.URL+PathReadyz)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "first probe round") {
		t.Errorf("readyz before the first round: %d %q", resp.StatusCode, body)
	}
	src.ready.Store(true)
	resp, body = get(t, srv.URL+PathReadyz)
	if resp.StatusCode != http.StatusOK || string(body) != "ready\n" {
		t.Errorf("readyz after: %d %q", resp.StatusCode, body)
	}
}

// TestMetricsEndpoint: the exposition served over HTTP has the status
// series of the snapshot and passes promtool's linter.
func TestMetricsEndpoint(t *testing.T) {
	srv := server(t, &fakeSource{})
	resp, body := get(t, srv.URL+PathMetrics)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"drover_manifest_load_success 0\n",
		"drover_manifest_generation 3\n",
		`drover_node_reachable{node="a1"} 0` + "\n",
		`drover_node_converged{node="m1"} 1` + "\n",
		`drover_nodes{state="unreachable"} 1` + "\n",
		`drover_component_info{component="zk",desired_version="3.8.0",health="Healthy",node="m1",observed_version="3.8.0",sync="Synced"} 1` + "\n",
		`drover_rollout_halted 1` + "\n",
		`drover_build_info{goversion=`,
		`drover_probe_errors_total{reason="unreachable"} 1` + "\n",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestStatusJSON pins the shape `drover status` and API users rely on.
func TestStatusJSON(t *testing.T) {
	srv := server(t, &fakeSource{})
	resp, body := get(t, srv.URL+PathStatus)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	golden(t, "status.json", body)
	// It decodes back into the type the CLI reads.
	var st plan.ClusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Nodes[1].History[0].Duration != 1500*time.Millisecond || !st.LastLoadTime.Equal(t0) {
		t.Errorf("round trip lost data: %+v", st.Nodes[1].History)
	}
}

func TestPlanJSON(t *testing.T) {
	srv := server(t, &fakeSource{})
	resp, body := get(t, srv.URL+PathPlan)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("plan: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	golden(t, "plan.json", body)
}

// TestOnlyGet: the API changes nothing, so it takes nothing but GET (and
// HEAD); unknown paths are 404.
func TestOnlyGet(t *testing.T) {
	srv := server(t, &fakeSource{})
	for _, p := range []string{PathStatus, PathPlan, PathMetrics, PathReadyz} {
		resp, err := http.Post(srv.URL+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", p, resp.StatusCode)
		}
	}
	resp, _ := get(t, srv.URL+"/api/v1/nodes")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), PathStatus) {
		t.Errorf("index: %d %q", resp.StatusCode, body)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./api -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./api -update rewrites it):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestStatusQuery: the status filters by state and node and pages, in
// manifest order, keeping the cluster-level fields.
func TestStatusQuery(t *testing.T) {
	srv := server(t, &fakeSource{})
	for _, tc := range []struct {
		query string
		want  []string
		total string // X-Drover-Total-Nodes, "" when unfiltered
	}{
		{"", []string{"m1", "a1"}, ""},
		{"?state=notConverged", []string{"a1"}, "1"},
		{"?state=converged", []string{"m1"}, "1"},
		{"?state=unreachable", []string{"a1"}, "1"},
		{"?node=m1", []string{"m1"}, "1"},
		{"?node=a1&node=m1", []string{"m1", "a1"}, "2"},
		{"?node=nope", []string{}, "0"},
		{"?state=converged&node=a1", []string{}, "0"},
		{"?limit=1", []string{"m1"}, "2"},
		{"?offset=1&limit=1", []string{"a1"}, "2"},
		{"?offset=5", []string{}, "2"},
	} {
		resp, body := get(t, srv.URL+PathStatus+tc.query)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d: %s", tc.query, resp.StatusCode, body)
		}
		var st plan.ClusterStatus
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, n := range st.Nodes {
			got = append(got, n.Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || st.Cluster != "prod-east" || !st.Rollout.Halted {
			t.Errorf("%s: nodes %v (cluster %q), want %v", tc.query, got, st.Cluster, tc.want)
		}
		if h := resp.Header.Get(HeaderTotalNodes); h != tc.total {
			t.Errorf("%s: %s %q, want %q", tc.query, HeaderTotalNodes, h, tc.total)
		}
	}
}

// TestStatusQueryRefused: a query the API cannot answer says what is
// wrong instead of serving every node.
func TestStatusQueryRefused(t *testing.T) {
	srv := server(t, &fakeSource{})
	for query, want := range map[string]string{
		"?state=broken":                      `state="broken": want converged, notConverged or unreachable`,
		"?state=converged&state=unreachable": "state given 2 times",
		"?node=":                             "node= is empty",
		"?limit=-1":                          `limit="-1": want a whole number`,
		"?limit=0":                           "limit=0: want 1 or more",
		"?offset=x":                          `offset="x"`,
		"?nodes=m1":                          `unknown parameter "nodes"`,
	} {
		resp, body := get(t, srv.URL+PathStatus+query)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("%s: HTTP %d %q, want 400 with %q", query, resp.StatusCode, body, want)
		}
	}
}
