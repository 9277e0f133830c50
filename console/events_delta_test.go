package console

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

// TestEventsDelta: with ?view=delta the stream sends the whole status
// once, then only the nodes whose state changed (a probe's new times are
// no change), cluster-level changes with no node, and nodes that left.
func TestEventsDelta(t *testing.T) {
	src := newFakeSource()
	_, srv := serve(t, src, Options{Poll: 20 * time.Millisecond, Heartbeat: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+PathEvents+"?view=delta", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan sseEvent, 100)
	go readEvents(resp.Body, events)

	var st plan.ClusterStatus
	if err := json.Unmarshal([]byte(next(t, events, "status").data), &st); err != nil || len(st.Nodes) != 3 {
		t.Fatalf("first event: %v, %d nodes", err, len(st.Nodes))
	}
	delta := func() statusDelta {
		t.Helper()
		ev := <-events
		if ev.name != "delta" {
			t.Fatalf("event %q, want delta", ev.name)
		}
		var d statusDelta
		if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	names := func(d statusDelta) []string {
		var out []string
		for _, n := range d.Nodes {
			out = append(out, n.Name)
		}
		return out
	}

	// Every node probed again, nothing else: no event. Then a1 comes back.
	src.set(func(st *plan.ClusterStatus) {
		for i := range st.Nodes {
			st.Nodes[i].LastProbe = st.Nodes[i].LastProbe.Add(time.Minute)
			st.Nodes[i].LastProbeAttempt = st.Nodes[i].LastProbeAttempt.Add(time.Minute)
		}
	})
	time.Sleep(100 * time.Millisecond) // several polls
	src.set(func(st *plan.ClusterStatus) { st.Nodes[2].Reachable, st.Nodes[2].Reason = true, "back" })
	d := delta()
	if got := names(d); len(got) != 1 || got[0] != "a1" || !d.Nodes[0].Reachable || d.Cluster != "prod-east" {
		t.Fatalf("delta after a1 came back: nodes %v, cluster %q", got, d.Cluster)
	}
	// A cluster-level change alone: a delta with no node.
	src.set(func(st *plan.ClusterStatus) { st.Generation = 4 })
	if d := delta(); len(d.Nodes) != 0 || d.Generation != 4 {
		t.Fatalf("cluster-level delta: %d nodes, generation %d", len(d.Nodes), d.Generation)
	}
	// m2 leaves the manifest.
	src.set(func(st *plan.ClusterStatus) { st.Nodes = append(st.Nodes[:1], st.Nodes[2]) })
	if d := delta(); len(d.Nodes) != 0 || len(d.Removed) != 1 || d.Removed[0] != "m2" {
		t.Fatalf("removal delta: nodes %v, removed %v", names(d), d.Removed)
	}
	select {
	case ev := <-events:
		t.Errorf("event %q sent with nothing changed: %.200s", ev.name, ev.data)
	case <-time.After(100 * time.Millisecond):
	}
}
