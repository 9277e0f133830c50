package daemonproc

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
)

// PrometheusOptions say how to run a test's Prometheus.
type PrometheusOptions struct {
	// Targets are the drover daemons scraped (job "drover") every second.
	Targets []string
	// AlertFor replaces every shipped alert's `for` (metrics.RenderRules).
	AlertFor time.Duration
	// Addr is --web.listen-address; default a free port on 127.0.0.1.
	Addr string
}

// Prometheus is a real Prometheus (Debian's package) on loopback, in its
// own temp dir, scraping drover daemons every second with the shipped
// rules loaded.
type Prometheus struct {
	t    testing.TB
	addr string
}

// StartPrometheus runs Prometheus and waits until it is ready; the
// test's cleanup stops it.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: `make deps` installs Debian's prometheus package")
	}
	dir := t.TempDir()
	rules, err := metrics.RenderRules(o.AlertFor)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	targets := make([]string, len(o.Targets))
	for i, tg := range o.Targets {
		targets[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: drover
    static_configs:
      - targets: [%s]
`, filepath.Join(dir, "rules.yaml"), strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Addr == "" {
		o.Addr = FreeAddr(t)
	}
	p := &Prometheus{t: t, addr: o.Addr}
	proc := StartProc(t, ProcOptions{
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

func (p *Prometheus) api(path string, into any) {
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

// Alert is an active alert as Prometheus reports it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// Alerts are the active alerts (pending and firing).
func (p *Prometheus) Alerts() []Alert {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	p.api("/api/v1/alerts", &data)
	return data.Alerts
}

// Firing finds a firing alert by name and node ("" for any node).
func Firing(as []Alert, name, node string) *Alert {
	for i, a := range as {
		if a.State == "firing" && (name == "" || a.Labels["alertname"] == name) && (node == "" || a.Labels["node"] == node) {
			return &as[i]
		}
	}
	return nil
}

// DescribeAlerts lists alerts in one line, for messages.
func DescribeAlerts(as []Alert) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s{instance=%q,node=%q} %s", a.Labels["alertname"], a.Labels["instance"], a.Labels["node"], a.State))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// Query is an instant query's result as "labels value" lines.
func (p *Prometheus) Query(q string) []string {
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
