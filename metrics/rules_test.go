package metrics

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/drover-project/drover/inventory"
)

const (
	alertsDoc     = "../docs/ALERTS.md"
	runbookPrefix = "https://github.com/drover-project/drover/blob/main/docs/ALERTS.md#"
)

// shippedAlerts are the alerts issue 7 promises; more may be added.
var shippedAlerts = []string{
	"DroverNodeNotConverged", "DroverNodeUnreachable", "DroverManifestRejected",
	"DroverRolloutHalted", "DroverReconcileErrorsHigh", "DroverProbeStale", "DroverDown",
}

type rule struct {
	Record      string            `json:"record"`
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// loadRules parses a Prometheus rule file into its rules, all groups
// together.
func loadRules(t *testing.T, b []byte) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("parse rules: %v", err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func TestRulesPassPromtoolCheck(t *testing.T) {
	out := runPromtool(t, ".", nil, "check", "rules", "alerts.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules: %s", out)
	}
}

func TestRulesUnitTests(t *testing.T) {
	out := runPromtool(t, ".", nil, "test", "rules", "alerts_test.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %s", out)
	}
}

func TestEveryAlertIsComplete(t *testing.T) {
	doc, err := os.ReadFile(alertsDoc)
	if err != nil {
		t.Fatal(err)
	}
	known := knownNames(t)
	alerts := map[string]rule{}
	for _, r := range loadRules(t, AlertRules) {
		checkMetricRefs(t, r.Record+r.Alert, r.Expr, known)
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = r
		// The queries in annotations name drover metrics too.
		checkMetricRefs(t, r.Alert+" annotations", r.Annotations["description"], known)
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if _, err := model.ParseDuration(r.For); err != nil {
			t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
		}
		anchor := strings.ToLower(r.Alert)
		if got := r.Annotations["runbook_url"]; got != runbookPrefix+anchor {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, runbookPrefix+anchor)
		}
		if !bytes.Contains(doc, []byte("\n## "+r.Alert+"\n")) {
			t.Errorf("%s: docs/ALERTS.md has no section %q for its runbook_url anchor", r.Alert, "## "+r.Alert)
		}
	}
	for _, name := range shippedAlerts {
		if _, ok := alerts[name]; !ok {
			t.Errorf("alerts.yaml has no alert %s", name)
		}
	}
}

// TestEveryAlertHasUnitTests reads alerts_test.yaml and requires, for every
// alert: a quiet check on the converged cluster, and in one test a quiet
// check before it fires, a firing check, and a quiet check after the fix.
func TestEveryAlertHasUnitTests(t *testing.T) {
	b, err := os.ReadFile("alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			Name   string `json:"name"`
			Checks []struct {
				EvalTime  string            `json:"eval_time"`
				Alertname string            `json:"alertname"`
				ExpAlerts []json.RawMessage `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	type times struct{ quiet, firing []time.Duration }
	quietWhenConverged := map[string]bool{}
	covered := map[string]bool{}
	for _, test := range f.Tests {
		perAlert := map[string]*times{}
		for _, c := range test.Checks {
			d, err := model.ParseDuration(c.EvalTime)
			if err != nil {
				t.Fatalf("%s: eval_time %q: %v", test.Name, c.EvalTime, err)
			}
			tm := perAlert[c.Alertname]
			if tm == nil {
				tm = &times{}
				perAlert[c.Alertname] = tm
			}
			if len(c.ExpAlerts) == 0 {
				tm.quiet = append(tm.quiet, time.Duration(d))
				if strings.Contains(test.Name, "converged cluster fires nothing") {
					quietWhenConverged[c.Alertname] = true
				}
			} else {
				tm.firing = append(tm.firing, time.Duration(d))
			}
		}
		for name, tm := range perAlert {
			for _, fire := range tm.firing {
				var before, after bool
				for _, q := range tm.quiet {
					before = before || q < fire
					after = after || q > fire
				}
				if before && after {
					covered[name] = true
				}
			}
		}
	}
	for _, r := range loadRules(t, AlertRules) {
		if r.Alert == "" {
			continue
		}
		if !quietWhenConverged[r.Alert] {
			t.Errorf("%s: no check that it stays quiet on a converged cluster", r.Alert)
		}
		if !covered[r.Alert] {
			t.Errorf("%s: no test with a quiet check before it fires, a firing check, and a quiet check after", r.Alert)
		}
	}
}

func TestRenderRulesOverridesEveryFor(t *testing.T) {
	out, err := RenderRules(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	shipped := loadRules(t, AlertRules)
	rendered := loadRules(t, out)
	if len(rendered) != len(shipped) {
		t.Fatalf("rendered %d rules, shipped %d", len(rendered), len(shipped))
	}
	for i, r := range rendered {
		if r.Alert != "" && r.For != "10s" {
			t.Errorf("%s: for %q, want 10s", r.Alert, r.For)
		}
		r.For = shipped[i].For
		if a, b := mustJSON(t, r), mustJSON(t, shipped[i]); a != b {
			t.Errorf("rule %d changed beyond its for:\n%s\n%s", i, a, b)
		}
	}
	p := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "", nil, "check", "rules", p)
}

func TestRenderRulesEdgeCases(t *testing.T) {
	same, err := RenderRules(0)
	if err != nil || !bytes.Equal(same, AlertRules) {
		t.Errorf("RenderRules(0) = %d bytes, %v; want the shipped rules unchanged", len(same), err)
	}
	out, err := RenderRules(1500 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range loadRules(t, out) {
		if r.Alert != "" && r.For != "1s500ms" {
			t.Errorf("%s: for %q, want 1s500ms", r.Alert, r.For)
		}
	}
	for _, bad := range []time.Duration{-time.Second, time.Microsecond} {
		if _, err := RenderRules(bad); err == nil {
			t.Errorf("RenderRules(%s): no error", bad)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rulesBlock is the copy of alerts.yaml in docs/ALERTS.md.
var rulesBlock = regexp.MustCompile("(?s)(<!-- BEGIN alerts.yaml -->\n```yaml\n)(.*?)(```\n<!-- END alerts.yaml -->)")

// TestDocsCarryTheShippedRules keeps the mixin-style snippet in
// docs/ALERTS.md identical to alerts.yaml; -update rewrites it.
func TestDocsCarryTheShippedRules(t *testing.T) {
	doc, err := os.ReadFile(alertsDoc)
	if err != nil {
		t.Fatal(err)
	}
	m := rulesBlock.FindSubmatchIndex(doc)
	if m == nil {
		t.Fatal("docs/ALERTS.md has no <!-- BEGIN alerts.yaml --> ... <!-- END alerts.yaml --> block")
	}
	if *update {
		doc = append(append(append([]byte{}, doc[:m[4]]...), AlertRules...), doc[m[5]:]...)
		if err := os.WriteFile(alertsDoc, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		m = rulesBlock.FindSubmatchIndex(doc)
	}
	if got := doc[m[4]:m[5]]; !bytes.Equal(got, AlertRules) {
		t.Error("the rules in docs/ALERTS.md differ from metrics/alerts.yaml (run go test ./metrics -update)")
	}
}

// TestMetricsDocCoversEveryMetric requires a row in docs/METRICS.md for
// every exported metric and recorded series.
func TestMetricsDocCoversEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(knownNames(t))) {
		if !bytes.Contains(doc, []byte("| `"+name+"`")) {
			t.Errorf("docs/METRICS.md has no table row for %s", name)
		}
	}
}

// TestMetricsDocProbeReasons: the reasons docs/METRICS.md gives for
// drover_probe_errors_total are exactly the ones a probe fails with
// (inventory.Reasons), so a dashboard or alert written from the doc
// matches real series.
func TestMetricsDocProbeReasons(t *testing.T) {
	doc, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `drover_probe_errors_total` .*\\(([^)]*)\\)").FindSubmatch(doc)
	if row == nil {
		t.Fatal("docs/METRICS.md: no drover_probe_errors_total row with the reasons in parentheses")
	}
	var documented []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllSubmatch(row[1], -1) {
		documented = append(documented, string(m[1]))
	}
	if !slices.Equal(documented, inventory.Reasons) {
		t.Errorf("docs/METRICS.md lists probe error reasons %q; the code gives %q", documented, inventory.Reasons)
	}
}
