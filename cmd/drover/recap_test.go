package main

import (
	"strings"
	"testing"

	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

func TestRecap(t *testing.T) {
	nodes := []plan.NodeStatus{
		{Name: "m1", Reachable: true, Converged: true},
		{Name: "m2", Reachable: true, Converged: true},
		{Name: "m3", Reachable: true, Converged: false, Reason: "zookeeper: upgrade failed"},
		{Name: "a1", Reachable: false, Reason: "unreachable (connection refused)"},
		{Name: "a2", Reachable: true, Converged: true},
	}
	done := map[string]int{"m2": 2, "m3": 1}
	failed := map[string]int{"m3": 1, "a2": 1}
	got := map[string]string{}
	for _, r := range buildRecap(nodes, done, failed) {
		got[r.Node] = r.State
	}
	want := map[string]string{"m1": recapOK, "m2": recapChanged, "m3": recapFailed, "a1": recapUnreachable,
		// failed once, converged on a retry: changed (the counts say it failed once)
		"a2": recapChanged}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %s, want %s", n, got[n], w)
		}
	}
	var b strings.Builder
	if err := writeRecap(&b, buildRecap(nodes, done, failed)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "a1  unreachable  0 done, 0 failed  unreachable (connection refused)") {
		t.Errorf("recap:\n%s", b.String())
	}
}

// TestProgressSaysRetriesOnce: a retried action says which try it is, and
// a node that stays unknown is reported once, not at every probe.
func TestProgressSaysRetriesOnce(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, 1)
	start := reconciler.Event{Kind: reconciler.EventActionStart, Node: "m1", Component: "app", Message: "install app 1.0"}
	failed := reconciler.Event{Kind: reconciler.EventActionFailed, Node: "m1", Component: "app", Message: "boom", Action: &plan.Action{Kind: plan.ActionInstall}}
	lost := reconciler.Event{Kind: reconciler.EventProbe, Node: "a1", Message: "unknown: unreachable"}
	for _, e := range []reconciler.Event{start, failed, lost, start, lost, lost, {Kind: reconciler.EventProbe, Node: "a1", Message: "probed"}} {
		p.event(e)
	}
	want := "m1           install app 1.0 ...\n" +
		"m1           install app failed: boom\n" +
		"a1           unknown: unreachable\n" +
		"m1           install app 1.0 (try 2) ...\n" +
		"a1           reachable again\n"
	if b.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", b.String(), want)
	}
}
