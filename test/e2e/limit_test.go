package e2e

import (
	"strings"
	"testing"
)

// TestApplyLimit: apply --node repairs only that node and leaves the
// other's drift for later; apply --limit on a ZooKeeper member while
// another member outside the limit is down is refused with that reason,
// and changes nothing.
func TestApplyLimit(t *testing.T) {
	s := setup(t)
	m := s.baseline(t)
	const list = "/etc/dcos/master_list"
	one, other := s.agents[0], s.agents[1]
	for _, n := range s.agents {
		s.exec(t, n, "echo 10.9.9.9 >> "+list)
	}
	r := s.run(t, m, "apply", "--yes", "--node", one.Name)
	if r.Code != 0 {
		t.Fatalf("apply --node %s exited %d, want 0", one.Name, r.Code)
	}
	if got := s.exec(t, one, "cat "+list); strings.Contains(got, "10.9.9.9") {
		t.Errorf("%s: not repaired", one.Name)
	}
	if got := s.exec(t, other, "cat "+list); !strings.Contains(got, "10.9.9.9") {
		t.Errorf("%s: outside --node, but repaired", other.Name)
	}
	if !strings.Contains(r.Stdout, "Recap:\n  "+one.Name+"  changed") || strings.Contains(r.Stdout, "  "+other.Name+"  ") {
		t.Errorf("the recap should list %s as changed and leave %s out", one.Name, other.Name)
	}

	// A ZooKeeper member outside the limit is down: a rolling change of
	// the member inside would leave one of three.
	leader, down := s.masters[0], s.masters[1]
	s.exec(t, leader, "echo '# edited' >> "+installRoot+"/active/zookeeper/conf/zoo.cfg")
	s.exec(t, down, "systemctl stop drover-zookeeper.service")
	r = s.run(t, m, "apply", "--yes", "--limit", leader.Name)
	if r.Code != 1 || !strings.Contains(r.Stderr, "zookeeper: quorum") || !strings.Contains(r.Stderr, down.Name) {
		t.Errorf("apply --limit %s with %s down: exit %d, want 1 and the quorum rule naming %s", leader.Name, down.Name, r.Code, down.Name)
	}
	if got := s.exec(t, leader, "cat "+installRoot+"/active/zookeeper/conf/zoo.cfg"); !strings.Contains(got, "# edited") {
		t.Errorf("%s: the refused apply changed zoo.cfg", leader.Name)
	}
	s.mustApply(t, m)
	s.mustPlanEmpty(t, m)
}
