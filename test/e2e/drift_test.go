package e2e

import (
	"strings"
	"testing"

	"github.com/drover-project/drover/test/harness"
)

// TestDriftRepair: someone changes a node behind drover's back; plan
// names the action and why (exit 2), apply repairs it, plan is clean.
func TestDriftRepair(t *testing.T) {
	s := setup(t)
	m := s.baseline(t)
	agent, other := s.agents[0], s.agents[1]
	cases := []struct {
		name    string
		node    harness.Node
		drift   string
		action  string // the plan line, without the reason's tail
		diff    string // a line of the content diff under it, "" for none
		summary string
		check   func(t *testing.T)
	}{
		{
			name:    "unit stopped",
			node:    agent,
			drift:   "systemctl stop drover-node-exporter.service",
			action:  "~ restart node-exporter 1.8.2 (unit inactive",
			summary: "Plan: 0 to install, 0 to upgrade, 0 to reconfigure, 1 to restart, 0 to remove.",
			check:   func(t *testing.T) { requireExporters(t, []harness.Node{agent}, "1.8.2") },
		},
		{
			name:   "rendered file edited",
			node:   other,
			drift:  "echo 10.9.9.9 >> /etc/dcos/master_list",
			action: "~ reconfigure master-list 1 (master_list changed on disk)",
			// The node's copy, read back for the diff: the line added there.
			diff:    "\n          -10.9.9.9\n",
			summary: "Plan: 0 to install, 0 to upgrade, 1 to reconfigure, 0 to restart, 0 to remove.",
			check: func(t *testing.T) {
				if got := s.exec(t, other, "cat /etc/dcos/master_list"); strings.Contains(got, "10.9.9.9") {
					t.Errorf("master_list still edited: %q", got)
				}
			},
		},
		{
			name:    "package dir deleted",
			node:    agent,
			drift:   "rm -rf " + installRoot + "/packages/node-exporter",
			action:  "+ install node-exporter 1.8.2 (package dir missing)",
			summary: "Plan: 1 to install, 0 to upgrade, 0 to reconfigure, 0 to restart, 0 to remove.",
			check: func(t *testing.T) {
				s.exec(t, agent, "test -f "+installRoot+"/packages/node-exporter/1.8.2/bin/node_exporter")
				requireExporters(t, []harness.Node{agent}, "1.8.2")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.exec(t, tc.node, tc.drift)
			plan := s.run(t, m, "plan")
			if plan.Code != 2 {
				t.Fatalf("plan after drift exited %d, want 2", plan.Code)
			}
			if want := "node " + tc.node.Name + " (" + tc.node.Address + ")\n  " + tc.action; !strings.Contains(plan.Stdout, want) {
				t.Errorf("plan does not show %q", want)
			}
			if tc.diff != "" && !strings.Contains(plan.Stdout, tc.diff) {
				t.Errorf("plan does not show the diff line %q", tc.diff)
			}
			if got := lastLine(plan.Stdout); got != tc.summary {
				t.Errorf("plan summary %q, want %q", got, tc.summary)
			}
			s.mustApply(t, m)
			s.mustPlanEmpty(t, m)
			tc.check(t)
		})
	}
}
