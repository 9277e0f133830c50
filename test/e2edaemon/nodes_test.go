package e2edaemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/test/daemonproc"
)

// probeInterval is the manifests' probeInterval; the daemon jitters it by
// up to 20%.
const probeInterval = 5 * time.Second

// TestDriftRepaired: node_exporter stopped by hand on a node is running
// again within one probe interval (plus the restart itself), with a
// restart recorded in the node's history.
func TestDriftRepaired(t *testing.T) {
	s := setup(t)
	version, _ := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	s.writeManifest(t, m, spec{version: version})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, version, rollout)

	node := s.c.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.c.Exec(ctx, node.Name, "systemctl stop drover-"+component+".service"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if _, err := nodeVersion(node); err == nil {
		t.Fatal("node_exporter still answers after systemctl stop")
	}
	// One jittered interval, the restart and its health check, and what
	// a loaded machine adds.
	limit := probeInterval*6/5 + 15*time.Second
	daemonproc.WaitFor(t, limit, "node_exporter running again", func() bool {
		v, err := nodeVersion(node)
		return err == nil && v == version
	})
	t.Logf("drift repaired %s after the stop", since(stopped))
	s.waitConverged(t, d, version, 30*time.Second)
	for _, n := range d.Status().Nodes {
		if n.Name == node.Name && (n.LastAction == nil || n.LastAction.Action != "restart" || n.LastAction.Result != "success") {
			t.Errorf("%s last action = %+v, want a successful restart", n.Name, n.LastAction)
		}
	}
}

// TestUnreachableNode: a node cut off the network is reported unreachable
// and not converged (metrics and status) while a manifest change rolls out
// to the others; once back, it converges too.
func TestUnreachableNode(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	// An unreachable node uses up one unit of budget: with 2, the others
	// can still be upgraded one at a time.
	s.writeManifest(t, m, spec{version: from, maxUnavailable: "2"})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, from, rollout)

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
	daemonproc.WaitFor(t, 90*time.Second, "the cut node reported unreachable", func() bool {
		return hasMetric(d.Metrics(), fmt.Sprintf(`drover_node_reachable{node=%q} 0`, cut.Name))
	})
	mt := d.Metrics()
	for _, want := range []string{
		fmt.Sprintf(`drover_node_converged{node=%q} 0`, cut.Name),
		`drover_nodes{state="unreachable"} 1`,
		fmt.Sprintf(`drover_node_reachable{node=%q} 1`, s.c.Nodes[0].Name),
	} {
		if !hasMetric(mt, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	s.writeManifest(t, m, spec{version: to, maxUnavailable: "2"})
	others := s.c.Nodes[:2]
	daemonproc.WaitFor(t, rollout, "the reachable nodes upgraded", func() bool {
		for _, n := range others {
			if v, err := nodeVersion(n); err != nil || v != to {
				return false
			}
		}
		st := d.Status()
		return st.Nodes[0].Converged && st.Nodes[1].Converged
	})
	st := d.Status()
	c := st.Nodes[2]
	if c.Reachable || c.Converged || c.Reason == "" || c.Components[0].Sync != "Unknown" {
		t.Errorf("cut node status: %+v", c)
	}

	if err := s.c.Restore(cut.Name); err != nil {
		t.Fatal(err)
	}
	restored = true
	// Its probe backs off while cut: up to a minute or so to be retried.
	s.waitConverged(t, d, to, rollout)
	if !hasMetric(d.Metrics(), fmt.Sprintf(`drover_node_reachable{node=%q} 1`, cut.Name)) {
		t.Error("the restored node is not reported reachable")
	}
	if strings.Contains(d.Metrics(), `drover_nodes{state="unreachable"} 1`) {
		t.Error("still one node unreachable")
	}
}
