package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeSource is a cluster of three nodes: m1 converged, m2 upgrading zk
// (in flight), a1 unreachable; the last manifest edit was rejected.
type fakeSource struct {
	mu sync.Mutex
	st plan.ClusterStatus
}

func newFakeSource() *fakeSource {
	failed := plan.ActionRecord{Time: t0, Action: "upgrade", Component: "app", Version: "2.0", Result: "failure",
		Message: "upgrade app on a1: step upload artifact: exit 1: <no space left on device>", Duration: 1500 * time.Millisecond}
	ok := plan.ActionRecord{Time: t0.Add(time.Minute), Action: "install", Component: "app", Version: "1.0", Result: "success", Duration: 2300 * time.Millisecond,
		Steps: []plan.StepRecord{{Name: "upload artifact", Result: plan.StepChanged, Duration: 600 * time.Millisecond},
			{Name: "switch active", Result: plan.StepInPlace, Duration: 40 * time.Millisecond}}}
	upgrade := plan.Action{Node: "m2", Component: "zk", Kind: plan.ActionUpgrade, From: "3.8.0", To: "3.8.4", Disruptive: true}
	return &fakeSource{st: plan.ClusterStatus{
		Cluster: "prod-east", Generation: 3, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		LoadError:    "cluster.yaml: 2 problem(s):\n  spec.components[0].version: must not be empty\n  spec.nodes[1].address: \"x y\" is not an IP address",
		LastLoadTime: t0,
		Rollout: plan.RolloutStatus{InFlight: []plan.Action{upgrade}, Pending: 1,
			Waiting: []plan.NodeWaiting{{Node: "m3", Reason: "zk: quorum: one member at a time"}}},
		Nodes: []plan.NodeStatus{
			{
				Name: "m1", Address: "127.0.2.1", Reachable: true, Converged: true, LastProbe: t0, LastProbeAttempt: t0,
				Roles: []string{"master"}, Labels: map[string]string{"zone": "b", "rack": "r1"},
				Facts:   &plan.NodeFacts{OSID: "debian", OSVersion: "12", Arch: "x86_64", Hostname: "m1", FreeBytes: 5 << 30},
				History: []plan.ActionRecord{ok},
				Components: []plan.ComponentStatus{{Name: "zk", DesiredVersion: "3.8.4", ObservedVersion: "3.8.4",
					Sync: plan.Synced, Health: plan.Healthy, Active: "3.8.4", Unit: "active (running)", Leader: true,
					Receipt: &probes.Receipt{Component: "zk", Version: "3.8.4", ArtifactSHA256: "abcdef0123456789abcdef", ConfigHash: "c0ffee00c0ffee00", Generation: "9f86d081884c7d65", Time: t0, Previous: "3.8.0"}}},
			},
			{
				Name: "m2", Address: "127.0.2.2", Reachable: true, Reason: "zk: upgrade 3.8.0 -> 3.8.4 pending", InFlight: &upgrade,
				Components: []plan.ComponentStatus{{Name: "zk", DesiredVersion: "3.8.4", ObservedVersion: "3.8.0",
					Sync: plan.OutOfSync, Health: plan.Healthy, Reason: "upgrade 3.8.0 -> 3.8.4 pending"}},
			},
			{
				Name: "a1", Address: "127.0.2.11", Reason: "dial (connection refused)", ProbeError: "dial: connection refused",
				LastProbeAttempt: t0, ConsecutiveFailures: 4, LastAction: &failed, History: []plan.ActionRecord{failed},
				Components: []plan.ComponentStatus{{Name: "app", DesiredVersion: "2.0", Sync: plan.SyncUnknown,
					Health: plan.HealthUnknown, Reason: "dial (connection refused)"}},
			},
		},
	}}
}

func (f *fakeSource) Status() plan.ClusterStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeSource) CurrentPlan() plan.Plan {
	return plan.Plan{Generation: "9f86d081", Nodes: []plan.NodePlan{
		{Node: "m1", Known: true},
		{Node: "m2", Known: true, Actions: []plan.Action{{Node: "m2", Component: "zk", Kind: plan.ActionUpgrade,
			From: "3.8.0", To: "3.8.4", Reason: "version changed in manifest", Disruptive: true}}},
		{Node: "a1", Reason: "dial (connection refused)"},
	}}
}

func (f *fakeSource) set(fn func(*plan.ClusterStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

func serve(t *testing.T, src Source, o Options) (*Console, *httptest.Server) {
	t.Helper()
	o.Source = src
	c := New(o)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	return c, srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// text is the page with tags removed and spaces squeezed, to assert on
// what a reader sees.
func text(page string) string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(page, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func TestClusterPage(t *testing.T) {
	_, srv := serve(t, newFakeSource(), Options{SetupPath: "/setup"})
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	contains(t, "CSP", csp, "script-src 'self'", "frame-ancestors 'none'", "default-src 'none'")
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q", resp.Header.Get("Referrer-Policy"))
	}
	txt := text(body)
	contains(t, "cluster page", txt,
		"prod-east", "Generation 3", "9f86d081884c", "last edit rejected",
		"spec.components[0].version: must not be empty", `spec.nodes[1].address: "x y" is not an IP address`,
		"1 converged", "1 not converged", "1 unreachable", "3 nodes",
		"In progress 1 running, 1 more pending", "m2: upgrade zk 3.8.0 → 3.8.4", "m3 : zk: quorum: one member at a time",
		"✓ Converged", "↻ Updating", "✗ Unreachable",
		"3.8.4 → 3.8.4", "3.8.0 → 3.8.4", "2.0 → —", "≠ OutOfSync", "? Unknown", "♥ Healthy",
		"upgrade zk 3.8.0 → 3.8.4 (version changed in manifest) — restarts the service",
		"Setup wizard")
	// The matrix: a row per node with its state, a column per component,
	// the reason in the cell's title and in its details.
	contains(t, "cluster page", body,
		`<tr id="node-a1" data-state="Unreachable">`,
		`<div class="count ok" id="count-converged">`,
		`title="zk on m2: desired 3.8.4, observed 3.8.0, OutOfSync, Healthy — upgrade 3.8.0 -&gt; 3.8.4 pending"`,
		`<details id="cell-m2-zk">`,
		`<td class="cell none" title="app is not placed on m1">`,
		`data-fragment="/ui/fragment/cluster"`,
		`<script src="/assets/console.js" defer></script>`)
	if strings.Contains(body, "rollout-halted") {
		t.Error("a rollout that did not halt shows as halted")
	}
}

func TestClusterPageHaltAndEmpty(t *testing.T) {
	src := newFakeSource()
	src.set(func(st *plan.ClusterStatus) {
		st.LoadSuccess, st.LoadError = true, ""
		st.Rollout = plan.RolloutStatus{Halted: true, Reason: "upgrade zk 3.8.0 -> 3.8.4 on m2 failed its health check", Component: "zk", Node: "m2"}
	})
	_, srv := serve(t, src, Options{})
	_, body := get(t, srv.URL+"/")
	txt := text(body)
	contains(t, "halted page", txt, "✓ loaded", "✗ Halted at zk on m2. upgrade zk 3.8.0 -> 3.8.4 on m2 failed its health check")
	if strings.Contains(txt, "rejected") || strings.Contains(body, "Setup wizard") {
		t.Error("a loaded manifest shows as rejected, or the wizard is linked without a SetupPath")
	}

	_, srv = serve(t, &fakeSource{st: plan.ClusterStatus{LoadError: "cluster.yaml: open: no such file"}}, Options{})
	_, body = get(t, srv.URL+"/")
	contains(t, "page before any manifest", text(body), "No manifest loaded yet", "cluster.yaml: open: no such file")
}

func TestNodePage(t *testing.T) {
	_, srv := serve(t, newFakeSource(), Options{})
	resp, body := get(t, srv.URL+"/nodes/m1")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /nodes/m1: %d", resp.StatusCode)
	}
	contains(t, "node page m1", text(body),
		"m1 ✓ Converged", "zk leader 3.8.4 3.8.4", "Address 127.0.2.1", "Roles master", "rack=r1 zone=b", "OS debian 12", "Arch x86_64",
		"Free under install root 5.0 GiB", "Last good probe 2025-01-02 03:04:05 UTC", "Probe error none",
		"active (running)", "sha256 abcdef012345", "config c0ffee00c0ff", "previous 3.8.0",
		"install app 1.0 ✓ success 2.3s upload artifact changed · 600ms switch active in-place · 40ms", "Pending Nothing pending")
	_, body = get(t, srv.URL+"/nodes/a1")
	contains(t, "node page a1", text(body),
		"a1 ✗ Unreachable", "Probe error ✗ dial: connection refused", "OS not known yet", "Failures in a row 4",
		"upgrade app 2.0 ✗ failure 1.5s", "Pending Not known until the node answers a probe")
	// Output is escaped, never markup.
	contains(t, "node page a1", body, "exit 1: &lt;no space left on device&gt;")

	resp, body = get(t, srv.URL+"/nodes/nope")
	if resp.StatusCode != 404 || !strings.Contains(text(body), "No node “nope”") {
		t.Errorf("unknown node: %d %q", resp.StatusCode, text(body))
	}
}

// TestFragments: the main region alone, as the page's script swaps it in.
func TestFragments(t *testing.T) {
	_, srv := serve(t, newFakeSource(), Options{})
	_, body := get(t, srv.URL+"/ui/fragment/cluster")
	if strings.Contains(body, "<html") || !strings.Contains(body, `id="matrix"`) {
		t.Errorf("cluster fragment is not the main region alone: %.200s", body)
	}
	_, body = get(t, srv.URL+"/ui/fragment/nodes/m2")
	if strings.Contains(body, "<html") || !strings.Contains(text(body), "Running upgrade zk 3.8.0 → 3.8.4") {
		t.Errorf("node fragment: %.300s", text(body))
	}
	resp, _ := get(t, srv.URL+"/ui/fragment/nodes/nope")
	if resp.StatusCode != 404 {
		t.Errorf("fragment of an unknown node: %d", resp.StatusCode)
	}
}

func TestAssets(t *testing.T) {
	_, srv := serve(t, newFakeSource(), Options{})
	for path, ctype := range map[string]string{
		"/assets/console.css": "text/css", "/assets/console.js": "text/javascript", "/assets/common.js": "text/javascript",
		"/assets/favicon.svg": "image/svg+xml",
	} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) < 100 {
			t.Errorf("%s: %d %s %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	if resp, _ := get(t, srv.URL+"/assets/../console.go"); resp.StatusCode != 404 {
		t.Errorf("asset outside the static dir: %d", resp.StatusCode)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

func readEvents(r io.Reader, out chan<- sseEvent) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				out <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

func next(t *testing.T, events <-chan sseEvent, name string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended waiting for %q", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event in 10s", name)
		}
	}
}

// TestEventsDeliverChangesAndEndOnCancel: the stream sends the status at
// once, a changed status within a poll, heartbeats while quiet, and its
// handler returns when the client goes.
func TestEventsDeliverChangesAndEndOnCancel(t *testing.T) {
	src := newFakeSource()
	c, srv := serve(t, src, Options{Poll: 20 * time.Millisecond, Heartbeat: 150 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+PathEvents, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 100)
	go readEvents(resp.Body, events)

	var st plan.ClusterStatus
	if err := json.Unmarshal([]byte(next(t, events, "status").data), &st); err != nil || st.Nodes[2].Reachable {
		t.Fatalf("first status: %v %+v", err, st.Nodes)
	}
	src.set(func(st *plan.ClusterStatus) { st.Nodes[2].Reachable, st.Nodes[2].Reason = true, "back" })
	if err := json.Unmarshal([]byte(next(t, events, "status").data), &st); err != nil || !st.Nodes[2].Reachable {
		t.Fatalf("changed status: %v %+v", err, st.Nodes[2])
	}
	// Nothing changes now: heartbeats, and no status resent.
	next(t, events, "heartbeat")
	next(t, events, "heartbeat")
	select {
	case ev := <-events:
		if ev.name == "status" {
			t.Errorf("an unchanged status was sent again")
		}
	default:
	}

	cancel()
	resp.Body.Close()
	ended := make(chan struct{})
	go func() { c.streams.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event handler did not return after the client went")
	}
}

// TestEventsEndOnClose: Close (the daemon shutting down) ends every open
// stream and refuses new ones, so http.Server.Shutdown does not wait.
func TestEventsEndOnClose(t *testing.T) {
	c, srv := serve(t, newFakeSource(), Options{Poll: 20 * time.Millisecond})
	resp, err := http.Get(srv.URL + PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan sseEvent, 100)
	go readEvents(resp.Body, events)
	next(t, events, "status")
	c.Close()
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-events:
		case <-deadline:
			t.Fatal("the stream did not end on Close")
		}
	}
	resp2, body := get(t, srv.URL+PathEvents)
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stream after Close: %d %q", resp2.StatusCode, body)
	}
}

// TestShutdownWithOpenStream: a real http.Server with the console closed
// on shutdown stops at once though a page is still connected.
func TestShutdownWithOpenStream(t *testing.T) {
	c := New(Options{Source: newFakeSource(), Poll: 20 * time.Millisecond})
	srv := httptest.NewUnstartedServer(c.Handler())
	srv.Config.RegisterOnShutdown(c.Close)
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan sseEvent, 100)
	go readEvents(resp.Body, events)
	next(t, events, "status")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v after %s", err, time.Since(start))
	}
	for range events {
	}
}

func TestNodeBadgeNeverColourAlone(t *testing.T) {
	for _, b := range []badge{badgeConverged, badgeNotConverged, badgeUnreachable, badgeNotProbed, badgePaused, badgeUpdating,
		syncBadge(plan.Synced), syncBadge(plan.OutOfSync), syncBadge(plan.SyncUnknown),
		healthBadge(plan.Healthy), healthBadge(plan.Progressing), healthBadge(plan.Degraded),
		healthBadge(plan.Missing), healthBadge(plan.HealthUnknown)} {
		if b.Symbol == "" || b.Label == "" || b.Class == "" {
			t.Errorf("badge %+v lacks a symbol, a word or a class", b)
		}
	}
	if got := nodeBadge(plan.NodeStatus{Name: "x", Reason: "not probed yet"}, false); got != badgeNotProbed {
		t.Errorf("never probed: %+v", got)
	}
	if got := nodeBadge(plan.NodeStatus{Reachable: true, Paused: true}, false); got != badgePaused {
		t.Errorf("paused: %+v", got)
	}
}

// TestClusterPages: the matrix of a large fleet shows one page of
// nodesPerPage rows, with the fleet's counts whole, links to the next and
// previous pages and to the nodes in each state; the live refresh fetches
// the same page; a bad query is refused with what is wrong.
func TestClusterPages(t *testing.T) {
	src := newFakeSource()
	src.set(func(st *plan.ClusterStatus) {
		st.Nodes = nil
		for i := range 450 {
			n := plan.NodeStatus{Name: fmt.Sprintf("n%03d", i), Address: "127.0.0.1", Reachable: true, Converged: i%3 != 0}
			if i%90 == 0 {
				n.Reachable = false
			}
			st.Nodes = append(st.Nodes, n)
		}
	})
	_, srv := serve(t, src, Options{})
	rows := func(body string) int { return strings.Count(body, `<tr id="node-`) }

	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != 200 || rows(body) != nodesPerPage {
		t.Fatalf("first page: %d, %d rows, want %d", resp.StatusCode, rows(body), nodesPerPage)
	}
	contains(t, "first page", text(body), "450 nodes", "nodes 1–200 of 450", "next →")
	contains(t, "first page", body, `<tr id="node-n000"`, `<tr id="node-n199"`, `href="/?page=2"`, `href="/?state=notConverged"`)
	if strings.Contains(body, `id="node-n200"`) || strings.Contains(body, `id="page-prev"`) {
		t.Error("the first page shows a row of the second, or a previous link")
	}

	_, body = get(t, srv.URL+"/?page=3")
	if rows(body) != 50 || strings.Contains(body, `id="page-next"`) {
		t.Errorf("last page: %d rows, want 50 and no next link", rows(body))
	}
	contains(t, "last page", body, `data-fragment="/ui/fragment/cluster?page=3"`, `href="/?page=2"`, `<tr id="node-n449"`)

	_, body = get(t, srv.URL+"/?state=notConverged")
	if rows(body) != 150 {
		t.Errorf("notConverged: %d rows, want 150", rows(body))
	}
	contains(t, "notConverged", text(body), "nodes 1–150 of 150 (notConverged)", "450 nodes")
	_, frag := get(t, srv.URL+"/ui/fragment/cluster?state=unreachable")
	if rows(frag) != 5 {
		t.Errorf("unreachable fragment: %d rows, want 5", rows(frag))
	}

	// The link the daemon prints carries the token for the page's script.
	if resp, _ := get(t, srv.URL+"/?token=0123456789abcdef0123&page=2"); resp.StatusCode != 200 {
		t.Errorf("GET /?token=…&page=2: %d, want 200", resp.StatusCode)
	}
	for _, q := range []string{"?page=0", "?page=x", "?state=odd", "?page=1&page=2"} {
		resp, body := get(t, srv.URL+"/"+q)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "cluster page: ") {
			t.Errorf("GET /%s: %d %q, want 400 saying what is wrong", q, resp.StatusCode, body)
		}
	}
}
