package e2edaemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/metrics"
	"github.com/drover-project/drover/test/daemonproc"
)

// alertFor is the `for` every shipped alert gets in this test.
const alertFor = 5 * time.Second

// prometheusServer is a real Prometheus (Debian's package) on loopback,
// in its own temp dir, scraping one drover daemon every second with the
// shipped rules loaded.
type prometheusServer struct {
	t    *testing.T
	addr string
}

func startPrometheus(t *testing.T, target string) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: `make deps` installs Debian's prometheus package")
	}
	dir := t.TempDir()
	rules, err := metrics.RenderRules(alertFor)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: drover
    static_configs:
      - targets: [%q]
`, filepath.Join(dir, "rules.yaml"), target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheusServer{t: t, addr: daemonproc.FreeAddr(t)}
	proc := daemonproc.StartProc(t, daemonproc.ProcOptions{
		Name: "prometheus", Path: bin, LogPath: filepath.Join(dir, "prometheus.log"), TailLines: 200,
		Args: []string{
			"--config.file=" + filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + p.addr,
			"--log.level=warn",
		},
	})
	proc.WaitUntil(60*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

func (p *prometheusServer) api(path string, into any) {
	p.t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Status != "success" {
		p.t.Fatalf("prometheus %s: %v %s %s", path, err, env.Error, b)
	}
	if err := json.Unmarshal(env.Data, into); err != nil {
		p.t.Fatal(err)
	}
}

type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// alerts are the active alerts (pending and firing) Prometheus reports.
func (p *prometheusServer) alerts() []alert {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	p.api("/api/v1/alerts", &data)
	return data.Alerts
}

// firing finds a firing alert by name and node ("" for any node).
func firing(as []alert, name, node string) *alert {
	for i, a := range as {
		if a.State == "firing" && a.Labels["alertname"] == name && (node == "" || a.Labels["node"] == node) {
			return &as[i]
		}
	}
	return nil
}

func describe(as []alert) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s{node=%q} %s", a.Labels["alertname"], a.Labels["node"], a.State))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// query is an instant query's result as "labels value" lines.
func (p *prometheusServer) query(q string) []string {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	p.api("/api/v1/query?query="+url.QueryEscape(q), &data)
	var out []string
	for _, r := range data.Result {
		out = append(out, fmt.Sprintf("%v %v", r.Metric, r.Value[1]))
	}
	return out
}

// TestPrometheusAlertsOnUnreachableNode: a real Prometheus scrapes the
// daemon with the shipped rules (short `for`). A converged cluster fires
// nothing; a node cut off fires DroverNodeUnreachable and
// DroverNodeNotConverged for that node, whose descriptions name it and
// why (and DroverProbeStale, its failed probes counting as failed
// reconciles); once restored, they resolve.
func TestPrometheusAlertsOnUnreachableNode(t *testing.T) {
	s := setup(t)
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	version, _ := s.pair()
	s.writeManifest(t, m, spec{version: version, maxUnavailable: "2"})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, version, rollout)
	p := startPrometheus(t, d.Addr())

	daemonproc.WaitFor(t, 30*time.Second, "the daemon scraped", func() bool {
		r := p.query(`up{job="drover"} == 1`)
		return len(r) == 1
	})
	// The recording rules work on real data.
	daemonproc.WaitFor(t, 30*time.Second, "drover:nodes_converged:ratio = 1 and no reconcile errors", func() bool {
		return len(p.query(`drover:nodes_converged:ratio == 1`)) == 1 && len(p.query(`drover:reconcile_errors:ratio_rate5m == 0`)) == 1
	})
	// A converged cluster fires nothing, even after every `for`.
	time.Sleep(3 * alertFor)
	if as := p.alerts(); len(as) > 0 {
		t.Errorf("alerts on a converged cluster: %s", describe(as))
	}

	cut := s.c.Nodes[2]
	if err := s.c.Cut(cut.Name); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			s.c.Restore(cut.Name)
		}
	}()
	start := time.Now()
	var unreachable, notConverged *alert
	daemonproc.WaitFor(t, 2*time.Minute, "DroverNodeUnreachable and DroverNodeNotConverged firing", func() bool {
		as := p.alerts()
		unreachable, notConverged = firing(as, "DroverNodeUnreachable", cut.Name), firing(as, "DroverNodeNotConverged", cut.Name)
		return unreachable != nil && notConverged != nil
	})
	t.Logf("both alerts firing %s after the cut", since(start))
	// The other rules' assumptions hold on real data too: the failed
	// probes count as failed reconciles, and the node's last successful
	// probe grows older than three probe intervals.
	daemonproc.WaitFor(t, time.Minute, "reconcile errors recorded and DroverProbeStale firing", func() bool {
		return len(p.query(`drover:reconcile_errors:ratio_rate5m > 0`)) == 1 && firing(p.alerts(), "DroverProbeStale", cut.Name) != nil
	})
	for _, a := range []*alert{unreachable, notConverged} {
		if a.Labels["severity"] == "" || !strings.Contains(a.Annotations["summary"], cut.Name) ||
			!strings.Contains(a.Annotations["description"], cut.Name) || a.Labels["job"] != "drover" {
			t.Errorf("%s: labels %v annotations %v", a.Labels["alertname"], a.Labels, a.Annotations)
		}
	}
	if !strings.Contains(notConverged.Annotations["description"], "unreachable over SSH") {
		t.Errorf("DroverNodeNotConverged does not say why: %q", notConverged.Annotations["description"])
	}
	for _, n := range s.c.Nodes[:2] {
		as := p.alerts()
		if a := firing(as, "", n.Name); a != nil {
			t.Errorf("an alert fires for the reachable node %s: %s", n.Name, describe(as))
		}
	}

	if err := s.c.Restore(cut.Name); err != nil {
		t.Fatal(err)
	}
	restored = true
	start = time.Now()
	daemonproc.WaitFor(t, 3*time.Minute, "both alerts resolved", func() bool {
		for _, a := range p.alerts() {
			if a.Labels["node"] == cut.Name {
				return false
			}
		}
		return true
	})
	t.Logf("alerts resolved %s after the restore", since(start))
}
