package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

// probeInterval is the manifest's (spec.probeInterval in yaml()).
const probeInterval = 10 * time.Second

// faults is one drover daemon over the shared cluster, driven by
// rewriting its manifest, as an operator would.
type faults struct {
	s    *suite
	path string
	d    *daemonproc.Daemon
}

// TestQuorumFaults runs a daemon over the cluster and walks it through
// the faults of a rollout on a real quorum service (issue 16): the
// ensemble's leader is listed first in the manifest, so node order alone
// would change it first. Each subtest leaves the cluster as it found it.
func TestQuorumFaults(t *testing.T) {
	s := setup(t)
	sp := s.current(t)
	s.mustApply(t, s.write(t, sp))
	s.requireEnsemble(t)
	sp.Order = s.leaderFirst(t)
	q := &faults{s: s, path: filepath.Join(t.TempDir(), "cluster.yaml")}
	q.write(t, sp)
	// Listing the nodes in another order changes nothing on them.
	s.mustPlanEmpty(t, q.path)
	q.d = daemonproc.Start(t, daemonproc.Options{Binary: s.drover, Manifest: q.path})
	q.settle(t, time.Minute)

	// Each subtest starts from the manifest the one before left in force.
	t.Run("LeaderChangesLast", func(t *testing.T) { sp = q.leaderChangesLast(t, sp) })
	t.Run("UndoRestartsNothing", func(t *testing.T) { q.undoRestartsNothing(t, sp) })
	t.Run("CrashLoopFailsFast", func(t *testing.T) { q.crashLoopFailsFast(t, sp) })
	t.Run("DiskFullHalts", func(t *testing.T) { q.diskFullHalts(t, sp) })
	t.Run("NodeBackProbedWithinInterval", func(t *testing.T) { q.nodeBackProbedWithinInterval(t, sp) })
}

// leaderFirst is a node order with the ensemble's leader first, then the
// other masters, then the agents.
func (s *suite) leaderFirst(t *testing.T) []int {
	t.Helper()
	leader := s.zkLeader(t)
	order := []int{}
	for i, n := range s.masters {
		if n.Name == leader {
			order = append(order, i)
		}
	}
	if len(order) != 1 {
		t.Fatalf("no zookeeper leader among the masters")
	}
	for i, n := range s.nodes() {
		if n.Name != leader {
			order = append(order, i)
		}
	}
	return order
}

// leaderChangesLast: the lead is on the node listed first; a rolling
// change of zoo.cfg restarts the members one at a time, the leader only
// after the others' actions ended, so it costs one election.
func (q *faults) leaderChangesLast(t *testing.T, sp spec) spec {
	s := q.s
	leader := s.zkLeader(t)
	if first := s.nodes()[sp.Order[0]].Name; leader != first {
		t.Fatalf("%s leads, not %s, the first node of the manifest", leader, first)
	}
	sp.ZKComment = fmt.Sprintf("leader last %d", time.Now().UnixNano())
	ctx, stop := context.WithCancel(context.Background())
	writes := writer(ctx, s.zkAddrs(), fmt.Sprintf("/drover-e2e-leader-%d", time.Now().UnixNano()))
	edited := q.edit(t, sp)
	st := q.settle(t, 4*time.Minute)
	time.Sleep(time.Second)
	stop()
	ws := <-writes

	acts := actionsSince(st, "zookeeper", edited)
	t.Logf("zookeeper actions: %v", acts)
	if len(acts) != len(s.masters) {
		t.Errorf("%d zookeeper actions, want one per master", len(acts))
		return sp
	}
	last := acts[len(acts)-1]
	if last.node != leader {
		t.Errorf("the last zookeeper action ran on %s; want %s, the leader", last.node, leader)
	}
	for _, a := range acts[:len(acts)-1] {
		if !a.end.Before(last.start) {
			t.Errorf("%s's action ended at %v, after the leader's began at %v", a.node, a.end, last.start)
		}
	}
	worst, failed, stretches := outage(ws)
	t.Logf("writes: %d, %d failed in %d stretch(es), longest without a write %v", len(ws), failed, stretches, worst.Round(time.Millisecond))
	if stretches > 1 {
		t.Errorf("writes failed in %d separate stretches; with the leader changed last, want at most one election", stretches)
	}
	return sp
}

// undoRestartsNothing: an edit to a zookeeper release with a wrong
// sha256 halts before any node changes; once every node has been probed
// for it, the edit is undone, and nothing is restarted: the probe taken
// for the bad release never hashed the good one's files.
func (q *faults) undoRestartsNothing(t *testing.T, good spec) {
	s := q.s
	before := q.pids(t)
	bad := good
	bad.ZooKeeper.Version += "-b"
	bad.ZooKeeper.Artifact.SHA256 = strings.Repeat("0", 64)
	q.edit(t, bad)
	halted := q.waitHalted(t, time.Minute)
	if !strings.Contains(halted.Rollout.Reason, "checksum mismatch") {
		t.Fatalf("halt reason %q, want a checksum mismatch", halted.Rollout.Reason)
	}
	q.waitProbedAfter(t, time.Now(), time.Minute)
	undone := q.edit(t, good)
	q.settle(t, 2*time.Minute)
	// Every node probed again after the undo: any action it needed has run.
	q.waitProbedAfter(t, time.Now(), time.Minute)
	st := q.settle(t, 2*time.Minute)
	for _, n := range st.Nodes {
		for _, h := range n.History {
			if h.Time.After(undone) {
				t.Errorf("%s: %s %s after the undo (%s)", n.Name, h.Action, h.Component, h.Message)
			}
		}
	}
	if after := q.pids(t); !maps.Equal(before, after) {
		t.Errorf("main pids changed: before %v, after %v", before, after)
	}
	s.requireEnsemble(t)
}

// crashLoopFailsFast: node_exporter upgraded to a build that exits at
// once, with healthTimeout 5m: systemd keeps it activating
// (auto-restart), and the upgrade fails on its crash loop, is rolled
// back and halts the rollout in seconds.
func (q *faults) crashLoopFailsFast(t *testing.T, good spec) {
	s := q.s
	bad := good.withNodeExporter(s.arts[harness.ArtifactFailing])
	bad.NodeExporter.Exec = "{{ .Dir }}/bin/failing --web.listen-address={{ .Node.Address }}:9100"
	bad.NodeExporter.MaxUnavailable = "1"
	bad.HealthTimeout = "5m"
	q.edit(t, bad)
	st := q.waitHalted(t, 90*time.Second)
	reason := st.Rollout.Reason
	t.Logf("halt: %s", reason)
	for _, want := range []string{"exited", "times in", "status=1", "rolled back to " + good.NodeExporter.Version} {
		if !strings.Contains(reason, want) {
			t.Errorf("halt reason does not say %q", want)
		}
	}
	if strings.Count(reason, " on "+st.Rollout.Node+":") > 0 {
		t.Errorf("halt reason repeats its prefix: %s", reason)
	}
	var upgrade, rollback *plan.ActionRecord
	for _, n := range st.Nodes {
		if n.Name != st.Rollout.Node {
			continue
		}
		for i := range n.History {
			switch h := &n.History[i]; {
			case h.Component == "node-exporter" && h.Action == "upgrade" && h.Result == "failure":
				upgrade = h
			case h.Component == "node-exporter" && h.Action == "rollback":
				rollback = h
			}
		}
	}
	if upgrade == nil || rollback == nil {
		t.Fatalf("%s: no failed upgrade and rollback in the history", st.Rollout.Node)
	}
	if took := rollback.Time.Sub(upgrade.Time.Add(-upgrade.Duration)); took > 15*time.Second {
		t.Errorf("upgrade start to rollback end took %v, want under 15s with healthTimeout 5m", took)
	} else {
		t.Logf("upgrade start to rollback end: %v", took.Round(time.Millisecond))
	}
	requireExporters(t, s.nodes(), good.NodeExporter.Version)
	q.edit(t, good)
	q.settle(t, 2*time.Minute)
}

// diskFullHalts: the cache of the member the rollout changes first is a
// full tmpfs; an upgrade of zookeeper halts at its upload, names node,
// step and free space, and no member is restarted.
func (q *faults) diskFullHalts(t *testing.T, good spec) {
	s := q.s
	leader := s.zkLeader(t)
	var target harness.Node
	for _, i := range good.Order {
		if n := s.nodes()[i]; i < numMasters && n.Name != leader {
			target = n
			break
		}
	}
	cache := installRoot + "/cache"
	s.exec(t, target, "mount -t tmpfs -o size=1m drover-e2e-full "+cache)
	t.Cleanup(func() { s.exec(t, target, "umount "+cache) })
	before := q.pids(t)
	next := good
	next.ZooKeeper.Version += "-c" // a version never unpacked: the artifact must be uploaded
	q.edit(t, next)
	st := q.waitHalted(t, 2*time.Minute)
	reason := st.Rollout.Reason
	t.Logf("halt: %s", reason)
	if st.Rollout.Node != target.Name {
		t.Errorf("halted at %q, want %s", st.Rollout.Node, target.Name)
	}
	for _, want := range []string{"on " + target.Name, "upload artifact", "no space left on device", cache + ": ", "free", "artifact "} {
		if !strings.Contains(reason, want) {
			t.Errorf("halt reason does not say %q", want)
		}
	}
	time.Sleep(probeInterval) // room for the rollout to go on, were it to
	st = q.d.Status()
	for _, n := range st.Nodes {
		for _, h := range n.History {
			if h.Component == "zookeeper" && h.Version == next.ZooKeeper.Version && n.Name != target.Name {
				t.Errorf("%s: %s zookeeper %s after the failed upload on %s", n.Name, h.Action, h.Version, target.Name)
			}
		}
	}
	if after := q.pids(t); !maps.Equal(before, after) {
		t.Errorf("main pids changed: before %v, after %v", before, after)
	}
	if v := s.active(t, target, "zookeeper"); !strings.HasSuffix(v, "/"+good.ZooKeeper.Version) {
		t.Errorf("%s: active link %q, want %s", target.Name, v, good.ZooKeeper.Version)
	}
	s.requireEnsemble(t)
	q.edit(t, good)
	q.settle(t, 2*time.Minute)
}

// nodeBackProbedWithinInterval: an agent killed as a rollout of
// node_exporter starts is probed at least once a probe interval while
// down (long enough for a retry backoff to grow past it), and once
// booted again within one probe interval of its sshd answering; the
// daemon logs it going and coming back once each, and the rollout
// finishes.
func (q *faults) nodeBackProbedWithinInterval(t *testing.T, sp spec) {
	s := q.s
	other := s.arts[harness.ArtifactNodeExporterNew]
	if sp.NodeExporter.Version == other.Version {
		other = s.arts[harness.ArtifactNodeExporterOld]
	}
	up := sp.withNodeExporter(other)
	up.NodeExporter.MaxUnavailable = "1"
	victim := s.nodes()[sp.Order[len(sp.Order)-1]]
	edited := q.edit(t, up)
	daemonproc.WaitFor(t, time.Minute, "the rollout's first action", func() bool {
		for _, n := range q.d.Status().Nodes {
			if n.InFlight != nil || len(actionsOf(n, "node-exporter", edited)) > 0 {
				return true
			}
		}
		return false
	})
	if err := s.c.Kill(victim.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s", victim.Name)
	// From its first failed probe until one finds it again, its probes
	// (each one's start is in the status) come at most one probe
	// interval apart: an uncapped backoff from 2s waits 16s or more by
	// its fifth failure, well inside the 45s it stays down. Booted again,
	// it is probed within one probe interval of its sshd answering.
	killed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	booted := make(chan error, 1)
	var attempts []time.Time
	var back, found time.Time
	for starting := false; found.IsZero(); time.Sleep(100 * time.Millisecond) {
		if !starting && time.Since(killed) > 45*time.Second {
			starting = true
			go func() { booted <- s.c.Start(ctx, victim.Name) }()
		}
		select {
		case err := <-booted:
			if err != nil {
				t.Fatal(err)
			}
			back = time.Now() // Start returns once sshd answers
		default:
		}
		if time.Since(killed) > 3*time.Minute {
			t.Fatalf("%s not probed again within 3m of its kill", victim.Name)
		}
		for _, n := range q.d.Status().Nodes {
			if n.Name != victim.Name || n.LastProbeAttempt.IsZero() || (len(attempts) > 0 && !n.LastProbeAttempt.After(attempts[len(attempts)-1])) {
				continue
			}
			switch {
			case !n.Reachable:
				attempts = append(attempts, n.LastProbeAttempt)
			case len(attempts) > 0: // found again after failed probes
				attempts = append(attempts, n.LastProbeAttempt)
				found = time.Now()
			}
		}
	}
	if !back.IsZero() && found.After(back) {
		if took := found.Sub(back); took > probeInterval+3*time.Second {
			t.Errorf("%s was probed %v after its sshd answered, want within the probe interval (%v)", victim.Name, took.Round(time.Millisecond), probeInterval)
		} else {
			t.Logf("%s probed %v after its sshd answered", victim.Name, took.Round(time.Millisecond))
		}
	}
	var widest time.Duration
	for k := 1; k < len(attempts); k++ {
		widest = max(widest, attempts[k].Sub(attempts[k-1]))
	}
	t.Logf("%d probes of %s from its first failed one to the one that found it again, at most %v apart", len(attempts), victim.Name, widest.Round(time.Millisecond))
	// Slack: the probe itself, and the queue rounding a wait up to a
	// whole second.
	if len(attempts) < 4 || widest > probeInterval+3*time.Second {
		t.Errorf("probes of %s at most %v apart, want one every probe interval (%v)", victim.Name, widest.Round(time.Millisecond), probeInterval)
	}
	q.settle(t, 4*time.Minute)
	requireExporters(t, s.nodes(), other.Version)
	gone, again := 0, 0
	for _, l := range q.d.LogLines() {
		if l["node"] != victim.Name {
			continue
		}
		switch l["msg"] {
		case "node unreachable":
			gone++
		case "node reachable again":
			again++
		}
	}
	if gone != 1 || again != 1 {
		t.Errorf("log: %d 'node unreachable' and %d 'node reachable again' lines for %s, want one each", gone, again, victim.Name)
	}
}

// write puts the manifest for sp in place atomically, so the daemon's
// watcher never reads half a file.
func (q *faults) write(t *testing.T, sp spec) {
	t.Helper()
	tmp := q.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(q.s.yaml(sp)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, q.path); err != nil {
		t.Fatal(err)
	}
}

// edit writes sp and waits until the daemon runs it; it returns when it
// wrote it (the daemon may act on it before its status says so).
func (q *faults) edit(t *testing.T, sp spec) time.Time {
	t.Helper()
	old := q.d.Status().Hash
	written := time.Now()
	q.write(t, sp)
	daemonproc.WaitFor(t, 30*time.Second, "the daemon to load the edit", func() bool {
		st := q.d.Status()
		return st.LoadSuccess && st.Hash != old
	})
	return written
}

// settle waits until every node has converged and nothing runs.
func (q *faults) settle(t *testing.T, within time.Duration) plan.ClusterStatus {
	t.Helper()
	var st plan.ClusterStatus
	daemonproc.WaitFor(t, within, "every node converged", func() bool {
		st = q.d.Status()
		if st.Rollout.Halted || len(st.Rollout.InFlight) > 0 {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Converged {
				return false
			}
		}
		return true
	})
	return st
}

// waitHalted waits for the rollout to halt.
func (q *faults) waitHalted(t *testing.T, within time.Duration) plan.ClusterStatus {
	t.Helper()
	var st plan.ClusterStatus
	daemonproc.WaitFor(t, within, "the rollout to halt", func() bool {
		st = q.d.Status()
		return st.Rollout.Halted
	})
	return st
}

// waitProbedAfter waits until every node has been probed after since.
func (q *faults) waitProbedAfter(t *testing.T, since time.Time, within time.Duration) {
	t.Helper()
	daemonproc.WaitFor(t, within, "every node probed again", func() bool {
		for _, n := range q.d.Status().Nodes {
			if !n.LastProbe.After(since) {
				return false
			}
		}
		return true
	})
}

// pids are the main pids of every drover unit, by node and component.
func (q *faults) pids(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range q.s.nodes() {
		comps := []string{"node-exporter"}
		if slices.ContainsFunc(q.s.masters, func(m harness.Node) bool { return m.Name == n.Name }) {
			comps = append(comps, "zookeeper")
		}
		for _, c := range comps {
			_, _, pid := q.s.unitState(t, n, c)
			out[n.Name+"/"+c] = pid
		}
	}
	return out
}

// ranAction is one action of the daemon's history, start to end.
type ranAction struct {
	node       string
	start, end time.Time
}

func (a ranAction) String() string {
	return fmt.Sprintf("%s %s..%s", a.node, a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"))
}

// actionsOf are a node's actions on comp that began after since.
func actionsOf(n plan.NodeStatus, comp string, since time.Time) []ranAction {
	var out []ranAction
	for _, h := range n.History {
		if start := h.Time.Add(-h.Duration); h.Component == comp && start.After(since) {
			out = append(out, ranAction{node: n.Name, start: start, end: h.Time})
		}
	}
	return out
}

// actionsSince are every node's actions on comp that began after since,
// by start.
func actionsSince(st plan.ClusterStatus, comp string, since time.Time) []ranAction {
	var out []ranAction
	for _, n := range st.Nodes {
		out = append(out, actionsOf(n, comp, since)...)
	}
	slices.SortFunc(out, func(a, b ranAction) int { return a.start.Compare(b.start) })
	return out
}
