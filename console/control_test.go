package console

import (
	"context"
	"strings"
	"testing"

	"github.com/drover-project/drover/reconciler/plan"
)

// diffSource is a fakeSource whose plan carries content diffs, as the
// controller's PlanWithDiffs gives them.
type diffSource struct {
	*fakeSource
	asked int
}

const secretValue = "s3cr3t-password-in-plain-text"

func (d *diffSource) PlanWithDiffs(context.Context) plan.Plan {
	d.asked++
	p := d.CurrentPlan()
	p.Nodes[1].Actions = append(p.Nodes[1].Actions, plan.Action{Node: "m2", Component: "zk", Kind: plan.ActionReconfigure, Reason: "config changed in manifest"})
	p.Nodes[1].Changes = map[string][]plan.FileChange{"zk": {
		{Path: "conf/zoo.cfg", Change: plan.ChangeUpdate, Diff: "--- m2:conf/zoo.cfg\n+++ manifest:conf/zoo.cfg\n@@ -1,2 +1,2 @@\n tickTime=2000\n-maxClientCnxns=60\n+maxClientCnxns=<120>\n"},
		// A caller that put content into a sensitive change still shows none.
		{Path: "conf/jaas.conf", Change: plan.ChangeUpdate, Sensitive: true, Note: plan.NoteSensitive, Diff: "+password=" + secretValue + "\n"},
		{Path: "conf/log4j.properties", Change: plan.ChangeUpdate, ModeFrom: "0644", ModeTo: "0600", Note: "(the node's copy was not read)"},
	}}
	return p
}

// TestPlanViewsShowDiffs: with a source that gives diffs, the cluster
// and node pages show each changed file with its diff lines (escaped,
// classed by kind), a sensitive file only as "(sensitive content
// changed)", and a mode change; the fragments too.
func TestPlanViewsShowDiffs(t *testing.T) {
	src := &diffSource{fakeSource: newFakeSource()}
	_, srv := serve(t, src, Options{})
	for _, path := range []string{"/", "/nodes/m2", pathFragment + "cluster", pathFragment + "nodes/m2"} {
		_, page := get(t, srv.URL+path)
		contains(t, path, page,
			`<code>conf/zoo.cfg</code>`,
			`<span class="del">-maxClientCnxns=60</span>`,
			`<span class="add">&#43;maxClientCnxns=&lt;120&gt;</span>`,
			`<span class="hunk">@@ -1,2 &#43;1,2 @@</span>`,
			`<code>conf/jaas.conf</code>`,
			plan.NoteSensitive,
			`mode 0644 → 0600`,
			"(the node&#39;s copy was not read)",
		)
		if strings.Contains(page, secretValue) {
			t.Errorf("%s shows a sensitive file's content", path)
		}
	}
	if src.asked != 4 {
		t.Errorf("PlanWithDiffs asked %d times for 4 pages, want 4", src.asked)
	}
}

// TestControlButtons: the cluster page offers suspend (or resume when
// suspended), probe every node, and retry when halted; a node page
// offers to probe that node. Every button names its endpoint for the
// script, which sends the token.
func TestControlButtons(t *testing.T) {
	src := newFakeSource()
	_, srv := serve(t, src, Options{})
	_, page := get(t, srv.URL+"/")
	contains(t, "cluster page", page, `data-control="/api/v1/suspend"`, `data-control="/api/v1/reconcile"`)
	for _, not := range []string{`data-control="/api/v1/resume"`, `data-control="/api/v1/retry"`, `id="suspended"`} {
		if strings.Contains(page, not) {
			t.Errorf("cluster page of a running, unhalted daemon has %s", not)
		}
	}
	src.set(func(st *plan.ClusterStatus) {
		st.Suspended = true
		st.Rollout = plan.RolloutStatus{Halted: true, Reason: "upgrade zk on m2 failed", Node: "m2", Component: "zk"}
	})
	_, page = get(t, srv.URL+"/")
	contains(t, "cluster page, suspended and halted", page, `data-control="/api/v1/resume"`, `data-control="/api/v1/retry"`,
		"Suspended by the operator: probing only")
	if strings.Contains(page, `data-control="/api/v1/suspend"`) {
		t.Error("a suspended daemon's page offers Suspend")
	}
	_, page = get(t, srv.URL+"/nodes/m2")
	contains(t, "node page", page, `data-control="/api/v1/reconcile" data-node="m2"`, "The daemon is suspended by the operator")
	_, js := get(t, srv.URL+"/assets/common.js")
	contains(t, "common.js", js, `closest("[data-control]")`, `droverFetch(button.dataset.control, { method: "POST"`)
}
