package main

import (
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

// TestPrintStatusListsRecentActions: the text status lists the last
// actions of every node, oldest first, at most recentActions of them.
func TestPrintStatusListsRecentActions(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	rec := func(min int, action, version, result string) plan.ActionRecord {
		return plan.ActionRecord{Time: t0.Add(time.Duration(min) * time.Minute), Action: action, Component: "app",
			Version: version, Result: result, Duration: 1500 * time.Millisecond}
	}
	st := plan.ClusterStatus{Cluster: "c", LoadSuccess: true, Nodes: []plan.NodeStatus{
		{Name: "n1", Reachable: true, History: []plan.ActionRecord{rec(1, "install", "1.0", "success"), rec(20, "upgrade", "3.0", "failure")}},
		{Name: "n2", Reachable: true, History: []plan.ActionRecord{rec(2, "install", "1.0", "success")}},
	}}
	for i := range recentActions {
		st.Nodes[1].History = append(st.Nodes[1].History, rec(3+i, "reconfigure", "1.0", "success"))
	}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	_, hist, ok := strings.Cut(out, "recent actions:\n")
	if !ok {
		t.Fatalf("no recent actions:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != recentActions+1 {
		t.Fatalf("%d lines of history, want a header and %d:\n%s", len(lines), recentActions, hist)
	}
	if !strings.HasPrefix(lines[1], "2026-12-03T08:04:00Z  n2") {
		t.Errorf("oldest listed: %q (the three oldest should be left out)", lines[1])
	}
	last := strings.Fields(lines[len(lines)-1])
	if strings.Join(last, " ") != "2026-12-03T08:20:00Z n1 upgrade app 3.0 failure 1.5s" {
		t.Errorf("newest: %q", lines[len(lines)-1])
	}
}
