package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// nodeBlock is the part of a text plan about one node.
func nodeBlock(plan string, n harness.Node) string {
	_, rest, ok := strings.Cut(plan, "node "+n.Name+" ("+n.Address+")\n")
	if !ok {
		return ""
	}
	block, _, _ := strings.Cut(rest, "\n\n")
	return block + "\n"
}

// TestPlanShowsTemplateDiff: a template edit shows in plan, under each
// node it concerns, as the exact line it adds to the file, in text and
// JSON, and plan changes nothing; apply then writes that line.
func TestPlanShowsTemplateDiff(t *testing.T) {
	s := setup(t)
	s.baseline(t)
	sp := s.base()
	sp.MasterListExtra = fmt.Sprintf("# template edit %d", time.Now().UnixNano())
	m := s.write(t, sp)
	const file = "/etc/dcos/master_list"

	plan := s.run(t, m, "plan")
	if plan.Code != 2 {
		t.Fatalf("plan exited %d, want 2", plan.Code)
	}
	for _, n := range s.agents {
		block := nodeBlock(plan.Stdout, n)
		for _, want := range []string{
			"  ~ reconfigure master-list 1 (config changed in manifest)\n",
			"      ~ " + file + "\n",
			"          --- " + file + " (on the node)\n",
			"          +" + sp.MasterListExtra + "\n",
		} {
			if !strings.Contains(block, want) {
				t.Errorf("%s: plan does not show %q:\n%s", n.Name, want, block)
			}
		}
	}
	for _, n := range s.masters {
		if strings.Contains(plan.Stdout, "node "+n.Name+" (") {
			t.Errorf("%s: in the plan, but master-list is not on it", n.Name)
		}
	}

	js := s.run(t, m, "plan", "-o", "json")
	var doc struct {
		Nodes []struct {
			Node    string `json:"node"`
			Changes map[string][]struct {
				Path, Change, Diff string
			} `json:"changes"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(js.Stdout), &doc); err != nil {
		t.Fatalf("plan -o json: %v", err)
	}
	diffs := 0
	for _, n := range doc.Nodes {
		for _, c := range n.Changes["master-list"] {
			if c.Path == file && c.Change == "update" && strings.Contains(c.Diff, "\n+"+sp.MasterListExtra+"\n") {
				diffs++
			}
		}
	}
	if diffs != len(s.agents) {
		t.Errorf("plan -o json has the diff for %d nodes, want %d", diffs, len(s.agents))
	}

	for _, n := range s.agents {
		if got := s.exec(t, n, "cat "+file); strings.Contains(got, sp.MasterListExtra) {
			t.Fatalf("%s: plan changed %s", n.Name, file)
		}
	}
	s.mustApply(t, m)
	for _, n := range s.agents {
		if got := s.exec(t, n, "cat "+file); !strings.Contains(got, sp.MasterListExtra+"\n") {
			t.Errorf("%s: apply did not write the line: %q", n.Name, got)
		}
	}
	s.mustPlanEmpty(t, m)
}
