package e2edaemon

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/test/daemonproc"
)

// alertFor is the `for` every shipped alert gets in this test.
const alertFor = 5 * time.Second

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
	p := daemonproc.StartPrometheus(t, daemonproc.PrometheusOptions{Targets: []string{d.Addr()}, AlertFor: alertFor})

	daemonproc.WaitFor(t, 30*time.Second, "the daemon scraped", func() bool {
		r := p.Query(`up{job="drover"} == 1`)
		return len(r) == 1
	})
	// The recording rules work on real data.
	daemonproc.WaitFor(t, 30*time.Second, "drover:nodes_converged:ratio = 1 and no reconcile errors", func() bool {
		return len(p.Query(`drover:nodes_converged:ratio == 1`)) == 1 && len(p.Query(`drover:reconcile_errors:ratio_rate5m == 0`)) == 1
	})
	// A converged cluster fires nothing, even after every `for`.
	time.Sleep(3 * alertFor)
	if as := p.Alerts(); len(as) > 0 {
		t.Errorf("alerts on a converged cluster: %s", daemonproc.DescribeAlerts(as))
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
	var unreachable, notConverged *daemonproc.Alert
	daemonproc.WaitFor(t, 2*time.Minute, "DroverNodeUnreachable and DroverNodeNotConverged firing", func() bool {
		as := p.Alerts()
		unreachable, notConverged = daemonproc.Firing(as, "DroverNodeUnreachable", cut.Name), daemonproc.Firing(as, "DroverNodeNotConverged", cut.Name)
		return unreachable != nil && notConverged != nil
	})
	t.Logf("both alerts firing %s after the cut", since(start))
	// The other rules' assumptions hold on real data too: the failed
	// probes count as failed reconciles, and the node's last successful
	// probe grows older than three probe intervals.
	daemonproc.WaitFor(t, time.Minute, "reconcile errors recorded and DroverProbeStale firing", func() bool {
		return len(p.Query(`drover:reconcile_errors:ratio_rate5m > 0`)) == 1 && daemonproc.Firing(p.Alerts(), "DroverProbeStale", cut.Name) != nil
	})
	for _, a := range []*daemonproc.Alert{unreachable, notConverged} {
		if a.Labels["severity"] == "" || !strings.Contains(a.Annotations["summary"], cut.Name) ||
			!strings.Contains(a.Annotations["description"], cut.Name) || a.Labels["job"] != "drover" {
			t.Errorf("%s: labels %v annotations %v", a.Labels["alertname"], a.Labels, a.Annotations)
		}
	}
	if !strings.Contains(notConverged.Annotations["description"], "unreachable over SSH") {
		t.Errorf("DroverNodeNotConverged does not say why: %q", notConverged.Annotations["description"])
	}
	for _, n := range s.c.Nodes[:2] {
		as := p.Alerts()
		if a := daemonproc.Firing(as, "", n.Name); a != nil {
			t.Errorf("an alert fires for the reachable node %s: %s", n.Name, daemonproc.DescribeAlerts(as))
		}
	}

	if err := s.c.Restore(cut.Name); err != nil {
		t.Fatal(err)
	}
	restored = true
	start = time.Now()
	daemonproc.WaitFor(t, 3*time.Minute, "both alerts resolved", func() bool {
		for _, a := range p.Alerts() {
			if a.Labels["node"] == cut.Name {
				return false
			}
		}
		return true
	})
	t.Logf("alerts resolved %s after the restore", since(start))
}
