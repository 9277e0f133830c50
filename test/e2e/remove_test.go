package e2e

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRemoveLeavesNothing: state: absent takes node_exporter off every
// node: no unit file, unit not loaded, no process, no active link, no
// package dir, no receipt, no cached artifact, nothing on :9100.
func TestRemoveLeavesNothing(t *testing.T) {
	s := setup(t)
	s.baseline(t)
	sum := s.receipt(t, s.nodes()[0], "node-exporter").ArtifactSHA256

	sp := s.base()
	sp.NodeExporter.State = "absent"
	m := s.write(t, sp)
	r := s.mustApply(t, m)
	removes := 0
	for _, a := range actions(r.Stdout) {
		if a.Kind == "remove" && a.Component == "node-exporter" && a.Event == "done" {
			removes++
		}
	}
	if removes != len(s.nodes()) {
		t.Errorf("apply finished %d removals of node-exporter, want %d", removes, len(s.nodes()))
	}
	for _, n := range s.nodes() {
		leftovers := s.exec(t, n, `for p in /etc/systemd/system/drover-node-exporter.service \
	`+installRoot+`/active/node-exporter `+installRoot+`/packages/node-exporter \
	`+installRoot+`/receipts/node-exporter.json `+installRoot+`/cache/`+sum+`.tar.gz; do
	if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi
done
ls -A `+installRoot+`/cache `+installRoot+`/active `+installRoot+`/receipts | grep -i 'node-exporter\|`+sum+`' || true
pgrep -a node_exporter || true`)
		if strings.TrimSpace(leftovers) != "" {
			t.Errorf("%s: node_exporter left behind:\n%s", n.Name, leftovers)
		}
		if active, load, _ := s.unitState(t, n, "node-exporter"); load != "not-found" || active != "inactive" {
			t.Errorf("%s: drover-node-exporter.service is %s/%s, want not-found/inactive", n.Name, load, active)
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.Address, "9100"), 2*time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("%s: something still answers on %s:9100", n.Name, n.Address)
		}
	}
	// The rest of the cluster is untouched and the plan is clean.
	s.mustPlanEmpty(t, m)
	s.requireEnsemble(t)
}
