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

// TestApplyDryRun: apply --dry-run on a drifted node prints the steps
// apply would take and changes nothing: the drift is still there and
// plan still wants the same action.
func TestApplyDryRun(t *testing.T) {
	s := setup(t)
	m := s.baseline(t)
	const list = "/etc/dcos/master_list"
	n := s.agents[0]
	s.exec(t, n, "echo 10.9.9.9 >> "+list)
	r := s.run(t, m, "apply", "--dry-run")
	if r.Code != 0 {
		t.Fatalf("apply --dry-run exited %d, want 0", r.Code)
	}
	for _, want := range []string{
		"\nnode " + n.Name + "\n  ~ reconfigure master-list 1 (master_list changed on disk)\n      would: ",
		"      would: write files\n",
		"nothing was changed.",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("dry run does not say %q", want)
		}
	}
	if got := s.exec(t, n, "cat "+list); !strings.Contains(got, "10.9.9.9") {
		t.Errorf("%s: the dry run repaired %s", n.Name, list)
	}
	if plan := s.run(t, m, "plan"); plan.Code != 2 {
		t.Errorf("plan after the dry run exited %d, want 2", plan.Code)
	}
	s.mustApply(t, m)
}
