package reconciler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestControllerConvergesFleetWithRealScripts: a fresh fleet gets app
// installed by the real on-node scripts, then upgraded by a new Desired
// with no other call, and the receipts carry each manifest's generation.
func TestControllerConvergesFleetWithRealScripts(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{})
	d1 := f.desired(spec{app: "1.0", maxUnavailable: "2"})
	c.SetDesired(d1)
	waitFor(t, 4*time.Minute, "app 1.0 everywhere", func() bool { return converged(c) && f.allAt("app", "1.0") })
	d2 := f.desired(spec{app: "2.0", maxUnavailable: "2"})
	c.SetDesired(d2)
	waitFor(t, 4*time.Minute, "app 2.0 everywhere", func() bool { return converged(c) && f.allAt("app", "2.0") })
	for _, n := range f.names {
		r := f.nodes[n].Component("app").Receipt
		if r.Generation != d2.Generation || r.Previous != "1.0" {
			t.Errorf("%s receipt: generation %q previous %q; want %q and 1.0", n, r.Generation, r.Previous, d2.Generation)
		}
	}
	st := c.Status()
	if st.Generation != 2 || st.Hash != d2.Generation || !st.LoadSuccess {
		t.Errorf("status: generation %d hash %q load %v", st.Generation, st.Hash, st.LoadSuccess)
	}
	for _, n := range st.Nodes {
		if n.LastAction == nil || n.LastAction.Action != "upgrade" || n.LastAction.Version != "2.0" || n.LastAction.Result != "success" {
			t.Errorf("%s last action = %+v", n.Name, n.LastAction)
		}
		if len(n.History) != 2 || n.History[0].Action != "install" {
			t.Errorf("%s history = %+v", n.Name, n.History)
		}
	}
	f.checkNoOverlap()
}

// TestControllerNeverTwoWorkersOnOneNode hammers the queue with manifest
// changes and budget wake-ups while many workers run: no node is ever
// probed or acted on by two at once.
func TestControllerNeverTwoWorkersOnOneNode(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{Workers: 16, WaitRetry: 5 * time.Millisecond})
	a := f.desired(spec{app: "1.0", maxUnavailable: "3"})
	b := f.desired(spec{app: "2.0", maxUnavailable: "3"})
	stop := time.After(2 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-stop:
		default:
			if i%2 == 0 {
				c.SetDesired(a)
			} else {
				c.SetDesired(b)
			}
			time.Sleep(15 * time.Millisecond)
			continue
		}
		break
	}
	c.SetDesired(b)
	waitFor(t, 4*time.Minute, "app 2.0 everywhere", func() bool { return converged(c) && f.allAt("app", "2.0") })
	f.checkNoOverlap()
	f.mu.Lock()
	probes := 0
	for _, ts := range f.probesOf {
		probes += len(ts)
	}
	f.mu.Unlock()
	if probes < 10 {
		t.Errorf("only %d probes: the test did not stress the queue", probes)
	}
}

// TestControllerManifestChangeQueuesEveryNodeAtOnce: with a probe
// interval of an hour, a new Desired still has every node probed at once.
func TestControllerManifestChangeQueuesEveryNodeAtOnce(t *testing.T) {
	f := newFleet(t, 8)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "8"}))
	waitFor(t, 4*time.Minute, "converged", func() bool { return converged(c) })
	time.Sleep(100 * time.Millisecond) // let the last re-probes land
	f.resetCounts()
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "8", extra: "a new generation, same content"}))
	// The probe interval is an hour: every node probed within a minute
	// means the change queued them all, not their timers.
	waitFor(t, time.Minute, "every node probed", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.probesOf) == len(f.names)
	})
	// And with nothing to do, nothing more until the probe interval.
	time.Sleep(300 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, ts := range f.probesOf {
		if len(ts) != 1 {
			t.Errorf("%s probed %d times after one change, want 1", n, len(ts))
		}
	}
	if len(f.attempts) != 0 {
		t.Errorf("actions ran on a converged cluster: %v", f.attempts)
	}
}

// TestControllerFailingNodeBacksOff: n3's artifact upload always fails,
// within a failure budget of one (rollout.maxFailures). Its attempts are
// spaced by an exponential backoff that stops growing at BackoffMax,
// while every other node converges; a new manifest retries it at once,
// and once the fault is gone it converges.
func TestControllerFailingNodeBacksOff(t *testing.T) {
	const base, maxB = 100 * time.Millisecond, 400 * time.Millisecond
	// slack is what a probe can take on a loaded machine; it is well
	// below what an uncapped backoff would reach by the 7th failure.
	const slack = 1500 * time.Millisecond
	f := newFleet(t, 4)
	f.set(func() { f.failStep["n3"] = "step: upload artifact" })
	c, _ := f.controller(ControllerOptions{BackoffBase: base, BackoffMax: maxB})
	// A batch as large as the cluster: n3 never waits for budget, so the
	// gaps between its attempts are its backoff alone.
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "4", maxFailures: 1}))
	others := []string{"n1", "n2", "n4"}
	waitFor(t, 4*time.Minute, "7 failed attempts on n3", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.attempts["n3"]) >= 8
	})
	waitFor(t, 4*time.Minute, "the other nodes converged", func() bool {
		st := c.Status()
		return f.allAt("app", "1.0", others...) && st.Nodes[0].Converged && st.Nodes[1].Converged && st.Nodes[3].Converged
	})
	var starts, ends []time.Time
	for _, e := range f.eventsOf("action-start") {
		if e.Node == "n3" {
			starts = append(starts, e.Time)
		}
	}
	for _, e := range f.eventsOf("action-failed") {
		if e.Node == "n3" {
			ends = append(ends, e.Time)
		}
	}
	// Attempt k+1 starts after failure k's backoff, min(base*2^(k-1), max)
	// with jitter in [d/2, d], plus one probe.
	for k := 1; k < 8 && k < len(starts) && k <= len(ends); k++ {
		d := min(base<<(k-1), maxB)
		gap := starts[k].Sub(ends[k-1])
		if gap < d/2 || gap > d+slack {
			t.Errorf("attempt %d started %s after failure %d, want within [%s, %s]", k+1, gap, k, d/2, d+slack)
		}
	}
	st := c.Status()
	n3 := st.Nodes[2]
	if n3.Converged || n3.ConsecutiveFailures < 7 || n3.LastAction == nil || n3.LastAction.Result != "failure" ||
		!strings.Contains(n3.LastAction.Message, "injected failure") {
		t.Errorf("n3 status: %+v", n3)
	}
	waitFor(t, time.Minute, "n3's status to show its backoff", func() bool {
		return strings.Contains(c.Status().Nodes[2].Reason, "retrying at")
	})
	for _, n := range st.Nodes {
		if n.Name != "n3" && !n.Converged {
			t.Errorf("%s not converged: %s", n.Name, n.Reason)
		}
	}

	// A new manifest is a reason to try again now, backoff or not.
	f.set(func() { f.failStep["n3"] = "" })
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "4", maxFailures: 1, extra: "retry"}))
	waitFor(t, 4*time.Minute, "n3 converged", func() bool { return converged(c) && f.allAt("app", "1.0") })
	if n3 := c.Status().Nodes[2]; n3.ConsecutiveFailures != 0 {
		t.Errorf("n3 failures after success = %d", n3.ConsecutiveFailures)
	}
	f.checkNoOverlap()
}

// TestControllerFailedStepHaltsOrHoldsItsSlot: a failed step (not a
// health gate) counts against the rollout. Every node's upload fails;
// with no failure budget the first failure halts the rollout, naming
// node and step once, and no other node starts; with a budget of one,
// the failed node keeps its slot of a batch of one until it succeeds,
// so it is retried and no other node starts either.
func TestControllerFailedStepHaltsOrHoldsItsSlot(t *testing.T) {
	for _, budget := range []int{0, 1} {
		t.Run(fmt.Sprintf("maxFailures %d", budget), func(t *testing.T) {
			f := newFleet(t, 4)
			f.set(func() {
				for _, n := range f.names {
					f.failStep[n] = "step: upload artifact"
				}
			})
			c, _ := f.controller(ControllerOptions{BackoffBase: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
			c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1", maxFailures: budget}))
			tried := func() (nodes []string, most int) {
				f.mu.Lock()
				defer f.mu.Unlock()
				for n, ts := range f.attempts {
					nodes, most = append(nodes, n), max(most, len(ts))
				}
				return nodes, most
			}
			if budget == 0 {
				waitFor(t, 4*time.Minute, "halt", func() bool { return c.Status().Rollout.Halted })
				r := c.Status().Rollout
				on := " on " + r.Node + " "
				if !strings.Contains(r.Reason, on+"failed: step ") || strings.Count(r.Reason, on) != 1 {
					t.Errorf("halt = %+v, want the node and its failed step, named once", r)
				}
			} else {
				waitFor(t, 4*time.Minute, "3 attempts on the failed node", func() bool { _, most := tried(); return most >= 3 })
				if c.Status().Rollout.Halted {
					t.Errorf("halted within the failure budget: %+v", c.Status().Rollout)
				}
			}
			time.Sleep(300 * time.Millisecond)
			if nodes, _ := tried(); len(nodes) != 1 {
				t.Errorf("actions started on %v, want only the first failed node: it holds the only slot", nodes)
			}
		})
	}
}

// TestControllerUnreachableNodeBacksOff: probes of a node that does not
// answer are spaced out too, capped, and it converges once back.
func TestControllerUnreachableNodeBacksOff(t *testing.T) {
	const base, maxB = 50 * time.Millisecond, 200 * time.Millisecond
	f := newFleet(t, 3)
	f.set(func() { f.unreachable["n2"] = true })
	c, _ := f.controller(ControllerOptions{BackoffBase: base, BackoffMax: maxB})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1"}))
	waitFor(t, 4*time.Minute, "n1 and n3 converged", func() bool { return f.allAt("app", "1.0", "n1", "n3") })
	f.resetCounts()
	time.Sleep(2 * time.Second)
	f.mu.Lock()
	at := append([]time.Time(nil), f.probesOf["n2"]...)
	f.mu.Unlock()
	// 2s of capped backoff in [100ms, 200ms]: 10 to 20 probes.
	if len(at) < 6 || len(at) > 21 {
		t.Errorf("%d probes of the unreachable node in 2s, want 10-20", len(at))
	}
	for k := 1; k < len(at); k++ {
		if gap := at[k].Sub(at[k-1]); gap < maxB/2 || gap > maxB+time.Second {
			t.Errorf("probe gap %d = %s, want the capped backoff, [%s, %s]", k, gap, maxB/2, maxB+time.Second)
		}
	}
	n2 := c.Status().Nodes[1]
	if n2.Reachable || n2.Converged || !strings.Contains(n2.Reason, "connection refused") {
		t.Errorf("n2 status: %+v", n2)
	}
	f.set(func() { f.unreachable["n2"] = false })
	waitFor(t, 4*time.Minute, "n2 converged", func() bool { return converged(c) && f.allAt("app", "1.0") })
}

// TestControllerUnreachableNodeProbedWithinInterval: however long a node
// stays unreachable, its backoff never spaces its probes more than one
// probe interval apart (it comes back by itself, and a rollout may wait
// for it), and its going and coming back are logged once each.
func TestControllerUnreachableNodeProbedWithinInterval(t *testing.T) {
	const interval = 400 * time.Millisecond
	f := newFleet(t, 3)
	f.set(func() { f.unreachable["n2"] = true })
	core, logs := observer.New(zap.InfoLevel)
	c, _ := f.controller(ControllerOptions{BackoffBase: 50 * time.Millisecond, BackoffMax: time.Hour, Log: zap.New(core)})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1", probeInterval: interval.String()}))
	waitFor(t, 4*time.Minute, "n1 and n3 converged", func() bool { return f.allAt("app", "1.0", "n1", "n3") })
	// Past the 6th failure, an uncapped backoff is over a second.
	time.Sleep(3 * time.Second)
	f.resetCounts()
	time.Sleep(2 * time.Second)
	f.mu.Lock()
	at := append([]time.Time(nil), f.probesOf["n2"]...)
	f.mu.Unlock()
	if len(at) < 3 {
		t.Errorf("%d probes of the unreachable node in 2s, want one every %v at least", len(at), interval)
	}
	for k := 1; k < len(at); k++ {
		if gap := at[k].Sub(at[k-1]); gap > interval+300*time.Millisecond {
			t.Errorf("probe gap %d = %s, want at most the probe interval %s", k, gap, interval)
		}
	}
	f.set(func() { f.unreachable["n2"] = false })
	waitFor(t, 4*time.Minute, "n2 converged", func() bool { return converged(c) && f.allAt("app", "1.0") })
	gone := logs.FilterMessage("node unreachable").FilterField(zap.String("node", "n2"))
	back := logs.FilterMessage("node reachable again").FilterField(zap.String("node", "n2"))
	if gone.Len() != 1 || back.Len() != 1 {
		t.Errorf("logged %d 'node unreachable' and %d 'node reachable again' for n2, want one each", gone.Len(), back.Len())
	}
	if gone.Len() > 0 && !strings.Contains(fmt.Sprint(gone.All()[0].ContextMap()), "refused") {
		t.Errorf("'node unreachable' does not say why: %v", gone.All()[0].ContextMap())
	}
}

// TestControllerMaxUnavailableIsClusterWide: 8 nodes, 16 workers, an
// upgrade with maxUnavailable 2: never more than two nodes in a
// disruptive action, by the controller's events and by the restarts the
// nodes actually see; and the budget is used, not wasted.
func TestControllerMaxUnavailableIsClusterWide(t *testing.T) {
	f := newFleet(t, 8)
	c, _ := f.controller(ControllerOptions{Workers: 16})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "8"}))
	waitFor(t, 4*time.Minute, "app 1.0 everywhere", func() bool { return converged(c) && f.allAt("app", "1.0") })
	f.resetCounts()
	f.RestartDelay = 40 * time.Millisecond
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "2"}))
	waitFor(t, 4*time.Minute, "app 2.0 everywhere", func() bool { return converged(c) && f.allAt("app", "2.0") })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxDisruptive != 2 {
		t.Errorf("at most %d disruptive actions were in flight at once, want exactly 2", f.maxDisruptive)
	}
	if f.maxRestarting["app"] > 2 || f.maxRestarting["app"] < 1 {
		t.Errorf("%d nodes restarted app at once, maxUnavailable is 2", f.maxRestarting["app"])
	}
	if len(f.attempts) != 8 {
		t.Errorf("upgrades ran on %d nodes, want 8", len(f.attempts))
	}
}

// TestControllerQuorumOneAtATime: zk is a quorum component on 3 masters;
// with a cluster budget of 3 it is still upgraded one member at a time.
func TestControllerQuorumOneAtATime(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{Workers: 16})
	c.SetDesired(f.desired(spec{zk: "1.0", zkMembers: 3, app: "1.0", maxUnavailable: "4"}))
	waitFor(t, 4*time.Minute, "converged", func() bool { return converged(c) })
	f.resetCounts()
	f.RestartDelay = 30 * time.Millisecond
	c.SetDesired(f.desired(spec{zk: "2.0", zkMembers: 3, app: "2.0", maxUnavailable: "3"}))
	waitFor(t, 4*time.Minute, "zk and app 2.0", func() bool {
		return converged(c) && f.allAt("zk", "2.0", "n1", "n2", "n3") && f.allAt("app", "2.0")
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxRestarting["zk"] != 1 {
		t.Errorf("%d zk members restarted at once, want 1", f.maxRestarting["zk"])
	}
	if f.maxRestarting["app"] > 3 {
		t.Errorf("%d app nodes restarted at once, maxUnavailable is 3", f.maxRestarting["app"])
	}
}

// TestControllerRejectedManifestKeepsLastGood: a load error keeps the
// desired state in force (drift is still repaired to it), shows in the
// status, and the next good manifest is applied.
func TestControllerRejectedManifestKeepsLastGood(t *testing.T) {
	f := newFleet(t, 3)
	c, _ := f.controller(ControllerOptions{})
	d1 := f.desired(spec{app: "1.0", maxUnavailable: "3", probeInterval: "1s"})
	c.SetDesired(d1)
	waitFor(t, 4*time.Minute, "converged", func() bool { return converged(c) })
	before := c.Status()

	c.SetLoadError(errors.New("cluster.yaml: spec.components[0].version: must not be empty"))
	st := c.Status()
	if st.LoadSuccess || !strings.Contains(st.LoadError, "spec.components[0].version") {
		t.Errorf("status after a rejected manifest: success %v error %q", st.LoadSuccess, st.LoadError)
	}
	if st.Generation != before.Generation || st.Hash != d1.Generation || !st.LastLoadTime.Equal(before.LastLoadTime) {
		t.Errorf("the rejected manifest changed the generation: %d %q %v", st.Generation, st.Hash, st.LastLoadTime)
	}
	// Drift is repaired to the last good manifest.
	writeFile(t, filepath.Join(f.nodes["n2"].State, "active", plan.UnitName("app")), "inactive\n")
	waitFor(t, 2*time.Minute, "n2 repaired", func() bool { return f.allAt("app", "1.0") && converged(c) })

	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "3", probeInterval: "1s"}))
	waitFor(t, 4*time.Minute, "app 2.0", func() bool { return converged(c) && f.allAt("app", "2.0") })
	if st := c.Status(); !st.LoadSuccess || st.LoadError != "" || st.Generation != before.Generation+1 {
		t.Errorf("after a good manifest: %+v", st)
	}
}

// TestControllerHaltPersistsUntilGenerationChanges: app 3.0 fails its
// health gate on the first node; the rollout halts there, the node is
// rolled back, no other node is touched however long we wait or however
// often the same manifest is set again; a new generation lifts the halt.
func TestControllerHaltPersistsUntilGenerationChanges(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1", onFailure: "rollback"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	f.resetCounts()
	bad := f.desired(spec{app: "3.0", maxUnavailable: "1", onFailure: "rollback", healthTimeout: "300ms"})
	c.SetDesired(bad)
	waitFor(t, 4*time.Minute, "halt", func() bool { return c.Status().Rollout.Halted })
	st := c.Status()
	if st.Rollout.Component != "app" || st.Rollout.Generation != bad.Generation || !strings.Contains(st.Rollout.Reason, "rolled back to 1.0") {
		t.Errorf("halt = %+v", st.Rollout)
	}
	failed := st.Rollout.Node
	waitFor(t, 2*time.Minute, "rollback settled", func() bool { return f.allAt("app", "1.0") })
	for i := 0; i < 5; i++ {
		c.SetDesired(bad) // the same generation again: still halted
		time.Sleep(100 * time.Millisecond)
	}
	if st := c.Status(); !st.Rollout.Halted {
		t.Fatal("halt lifted without a new generation")
	}
	f.mu.Lock()
	attempts := map[string]int{}
	for n, ts := range f.attempts {
		attempts[n] = len(ts)
	}
	f.mu.Unlock()
	if len(attempts) != 1 || attempts[failed] != 1 {
		t.Errorf("actions while halted: %v (want one upgrade on %s)", attempts, failed)
	}
	if !f.allAt("app", "1.0") {
		t.Error("a node is not back on 1.0")
	}
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1", onFailure: "rollback"}))
	waitFor(t, 4*time.Minute, "app 2.0 after the halt", func() bool { return converged(c) && f.allAt("app", "2.0") })
	if st := c.Status(); st.Rollout.Halted {
		t.Errorf("still halted: %+v", st.Rollout)
	}
}

// TestControllerReadyAfterEveryNodeProbed: not ready without a manifest,
// nor while one node's first probe is outstanding; ready once it lands,
// even though that node is unreachable.
func TestControllerReadyAfterEveryNodeProbed(t *testing.T) {
	f := newFleet(t, 3)
	gate := make(chan struct{})
	f.set(func() {
		f.probeGate["n3"] = gate
		f.unreachable["n3"] = true
	})
	c, _ := f.controller(ControllerOptions{})
	if c.Ready() {
		t.Fatal("ready with no manifest")
	}
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3"}))
	waitFor(t, 4*time.Minute, "n1, n2 installed", func() bool { return f.allAt("app", "1.0", "n1", "n2") })
	if c.Ready() {
		t.Fatal("ready before n3 was probed")
	}
	close(gate)
	waitFor(t, 2*time.Minute, "ready", c.Ready)
	if n3 := c.Status().Nodes[2]; n3.Reachable {
		t.Errorf("n3 reachable: %+v", n3)
	}
}

// TestControllerRecoversPanics: a probe that panics and a step that
// panics mid-action cost a retry, not the daemon; the budget the panicked
// action held is given back, and everything converges.
func TestControllerRecoversPanics(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "4"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	f.set(func() {
		f.probePanics["n2"] = 2
		f.stepPanics["n4"] = 1
	})
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1"}))
	waitFor(t, 4*time.Minute, "app 2.0 despite the panics", func() bool { return converged(c) && f.allAt("app", "2.0") })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.probePanics["n2"] != 0 || f.stepPanics["n4"] != 0 {
		t.Errorf("panics not all triggered: %v %v", f.probePanics, f.stepPanics)
	}
}

// TestControllerRunWaitsForInFlightActionWithinGrace: stopping lets the
// running upgrade finish (the node ends on the new version, receipt
// written), takes no new work, and Run returns.
func TestControllerRunWaitsForInFlightActionWithinGrace(t *testing.T) {
	f := newFleet(t, 3)
	c, stop := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	f.RestartDelay = 300 * time.Millisecond
	f.resetCounts()
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1"}))
	waitFor(t, 4*time.Minute, "an upgrade under way", func() bool { return len(f.eventsOf("action-start")) == 1 })
	stop()
	waitFor(t, 2*time.Minute, "the upgrade finished", func() bool { return len(f.eventsOf("action-done")) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := len(f.eventsOf("action-start")); n != 1 {
		t.Errorf("%d actions started after stop", n-1)
	}
	node := f.eventsOf("action-done")[0].Node
	if v, active := f.versionOn(node, "app"); v != "2.0" || !active {
		t.Errorf("%s after stop: %s active=%v, want 2.0 running", node, v, active)
	}
}

// TestControllerRunCancelsActionAfterGrace: an action that outlasts the
// grace period is cancelled and Run returns soon after.
func TestControllerRunCancelsActionAfterGrace(t *testing.T) {
	f := newFleet(t, 2)
	log := make(chan Event, 100)
	c := NewController(ControllerOptions{
		Runner: f, Probe: f.controllerProbe, Workers: 2,
		Executor: &execute.Config{Runner: f, HealthPoll: 10 * time.Millisecond, UnitDir: fleetUnitDir, Probe: f.Probe},
		OnEvent:  func(e Event) { log <- e },
	})
	f.set(func() { f.block["n1"] = make(chan struct{}) }) // never released
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "2"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 300*time.Millisecond); close(done) }()
	waitFor(t, 4*time.Minute, "n2 installed", func() bool { return f.allAt("app", "1.0", "n2") })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after the grace period")
	}
	// Not a timing test: at least the grace, and not the minutes the
	// blocked action would take (it never ends) on however loaded a machine.
	if d := time.Since(start); d < 300*time.Millisecond || d > 30*time.Second {
		t.Errorf("Run returned %s after stop, grace is 300ms", d)
	}
	var failed *Event
	for len(log) > 0 {
		if e := <-log; e.Kind == "action-failed" && e.Node == "n1" {
			failed = &e
		}
	}
	if failed == nil || !strings.Contains(failed.Message, "context canceled") {
		t.Errorf("n1's blocked action did not end cancelled: %+v", failed)
	}
}

// recordingObserver keeps what the controller reports.
type recordingObserver struct {
	mu         sync.Mutex
	reconciles map[string]int
	actions    map[string]int
	probeErrs  map[string]int
}

func (o *recordingObserver) ObserveReconcile(result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reconciles[result]++
}

func (o *recordingObserver) ObserveAction(action, component, result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.actions[action+" "+component+" "+result]++
}

func (o *recordingObserver) ObserveProbe(_ time.Duration, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.probeErrs[reason]++
}

// TestControllerObserverResults: reconcile results are "success" or
// "failure" only, the values drover_reconcile_total and its alert use.
func TestControllerObserverResults(t *testing.T) {
	f := newFleet(t, 3)
	obs := &recordingObserver{reconciles: map[string]int{}, actions: map[string]int{}, probeErrs: map[string]int{}}
	f.set(func() {
		f.unreachable["n3"] = true
		f.failStep["n2"] = "step: upload artifact"
	})
	c, _ := f.controller(ControllerOptions{Observer: obs})
	// A failure budget of one: n2 is tried again rather than halting.
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3", maxFailures: 1}))
	waitFor(t, 4*time.Minute, "n1 converged and failures seen", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.actions["install app success"] >= 1 && obs.actions["install app failure"] >= 2 && obs.probeErrs["dial"] >= 2
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for r := range obs.reconciles {
		if r != "success" && r != "failure" {
			t.Errorf("reconcile result %q", r)
		}
	}
	if obs.reconciles["success"] == 0 || obs.reconciles["failure"] < 4 {
		t.Errorf("reconciles = %v", obs.reconciles)
	}
	if obs.actions["install app success"] < 1 {
		t.Errorf("actions = %v", obs.actions)
	}
}

// TestControllerStatusDropsRemovedNodes: a node gone from the manifest is
// gone from the status (and so from the metrics), and Ready does not wait
// for it.
func TestControllerStatusDropsRemovedNodes(t *testing.T) {
	f := newFleet(t, 3)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3"}))
	waitFor(t, 4*time.Minute, "converged", func() bool { return converged(c) })
	f.names = f.names[:2]
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3"}))
	st := c.Status()
	if len(st.Nodes) != 2 || st.Nodes[0].Name != "n1" || st.Nodes[1].Name != "n2" {
		t.Errorf("nodes after removing n3: %+v", st.Nodes)
	}
	if p := c.CurrentPlan(); len(p.Nodes) != 2 {
		t.Errorf("plan nodes = %d", len(p.Nodes))
	}
	waitFor(t, 2*time.Minute, "ready", c.Ready)
}

var _ = fmt.Sprint

// TestControllerWakesWaitingNodesWhenBudgetFrees: nodes held back by the
// budget are woken when the action holding it is seen done, not left to
// their retry timer (an hour here).
func TestControllerWakesWaitingNodesWhenBudgetFrees(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{WaitRetry: time.Hour})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1"}))
	waitFor(t, 4*time.Minute, "app 1.0 everywhere, one at a time", func() bool { return converged(c) && f.allAt("app", "1.0") })
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1"}))
	waitFor(t, 4*time.Minute, "app 2.0 everywhere, one at a time", func() bool { return converged(c) && f.allAt("app", "2.0") })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxDisruptive != 1 {
		t.Errorf("%d disruptive actions at once, maxUnavailable is 1", f.maxDisruptive)
	}
}

// TestControllerFreedSlotWakesWhomItAdmits: in a rollout one node at a
// time, a freed slot wakes the node the planner admits next, not every
// node still waiting (each woken node probes and plans again: at 10,000
// nodes, thousands of passes per freed slot, and the rollout crawled), and
// the node whose action ended is probed at once, freeing its slot.
func TestControllerFreedSlotWakesWhomItAdmits(t *testing.T) {
	const n = 6
	f := newFleet(t, n)
	c, _ := f.controller(ControllerOptions{WaitRetry: time.Hour})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "100%"}))
	waitFor(t, 4*time.Minute, "app 1.0 everywhere", func() bool { return converged(c) && f.allAt("app", "1.0") })
	f.resetCounts()
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1"}))
	waitFor(t, 4*time.Minute, "app 2.0 everywhere, one at a time", func() bool { return converged(c) && f.allAt("app", "2.0") })
	f.mu.Lock()
	defer f.mu.Unlock()
	probes := 0
	for _, p := range f.probesOf {
		probes += len(p)
	}
	// Each node: the probe that sees its action done, and at most one
	// when it was woken. Waking every waiting node costs n*(n-1)/2 more.
	if probes > 2*n {
		t.Errorf("%d probes in a rollout of %d nodes one at a time, want at most %d", probes, n, 2*n)
	}
	if f.maxDisruptive != 1 {
		t.Errorf("%d disruptive actions at once, maxUnavailable is 1", f.maxDisruptive)
	}
}

// TestControllerChecksumMismatchHalts: an artifact that does not match the
// manifest's sha256 fails the same way everywhere, so the first mismatch
// halts the rollout (no node by node retries), changes nothing on the
// node, and the next manifest lifts the halt.
func TestControllerChecksumMismatchHalts(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	f.resetCounts()
	bad := f.desired(spec{app: "2.0", wrongAppSHA: true})
	c.SetDesired(bad)
	waitFor(t, 4*time.Minute, "halt", func() bool { return c.Status().Rollout.Halted })
	st := c.Status()
	if st.Rollout.Component != "app" || st.Rollout.Generation != bad.Generation ||
		!strings.Contains(st.Rollout.Reason, "checksum mismatch") || !strings.Contains(st.Rollout.Reason, strings.Repeat("ab", 32)) {
		t.Errorf("halt = %+v", st.Rollout)
	}
	time.Sleep(300 * time.Millisecond) // room for retries, were there any
	f.mu.Lock()
	attempts := 0
	for _, ts := range f.attempts {
		attempts += len(ts)
	}
	f.mu.Unlock()
	if attempts != 1 {
		t.Errorf("%d upgrade attempts after a checksum mismatch, want 1", attempts)
	}
	if !f.allAt("app", "1.0") {
		t.Error("a node left 1.0 after a checksum mismatch")
	}
	c.SetDesired(f.desired(spec{app: "2.0"}))
	waitFor(t, 4*time.Minute, "app 2.0 after the halt", func() bool { return converged(c) && f.allAt("app", "2.0") })
}

// TestControllerPlansFromLastProbeAfterEdit: after a manifest edit, each
// node's first action starts before the node is probed again (its last
// probe is recent and nothing ran since); the pass after the action
// probes. A node whose last probe is too old is probed first.
func TestControllerPlansFromLastProbeAfterEdit(t *testing.T) {
	f := newFleet(t, 4)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "4"}))
	waitFor(t, 4*time.Minute, "converged", func() bool { return converged(c) })
	time.Sleep(100 * time.Millisecond) // let the last re-probes land
	f.resetCounts()
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "4"}))
	waitFor(t, 4*time.Minute, "upgraded", func() bool { return f.allAt("app", "2.0", f.names...) && converged(c) })
	f.mu.Lock()
	for _, n := range f.names {
		starts, probed := f.attempts[n], f.probesOf[n]
		switch {
		case len(starts) == 0:
			t.Errorf("%s: no action", n)
		case len(probed) == 0:
			t.Errorf("%s: never probed after its action", n)
		case !starts[0].Before(probed[0]):
			t.Errorf("%s: probed at %v before its first action at %v", n, probed[0], starts[0])
		}
	}
	f.mu.Unlock()

	// The same edit on a fleet whose clock says every last probe is older
	// than the probe interval: each node is probed before it acts.
	g := newFleet(t, 2)
	late := func() time.Time { return time.Now().Add(3 * time.Hour) }
	c2, _ := g.controller(ControllerOptions{Now: late})
	c2.SetDesired(g.desired(spec{app: "1.0", maxUnavailable: "2"}))
	waitFor(t, 4*time.Minute, "converged", func() bool { return converged(c2) })
	time.Sleep(100 * time.Millisecond)
	g.resetCounts()
	c2.SetDesired(g.desired(spec{app: "2.0", maxUnavailable: "2"}))
	waitFor(t, 4*time.Minute, "upgraded", func() bool { return g.allAt("app", "2.0", g.names...) && converged(c2) })
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.names {
		starts, probed := g.attempts[n], g.probesOf[n]
		if len(starts) == 0 || len(probed) == 0 || !probed[0].Before(starts[0]) {
			t.Errorf("%s: with an old last probe, probes %v and action starts %v: want a probe first", n, probed, starts)
		}
	}
}

// TestControllerWaitRetrySpreadsOverLargeFleets: a held-back node is
// retried every WaitRetry in a small fleet; in a large one the retries
// of all its waiting nodes stay near 200 passes a second, and never
// further apart than a probe interval.
func TestControllerWaitRetrySpreadsOverLargeFleets(t *testing.T) {
	c := NewController(ControllerOptions{WaitRetry: 5 * time.Second})
	for _, tc := range []struct {
		nodes int
		want  time.Duration
	}{{10, 5 * time.Second}, {1000, 5 * time.Second}, {2000, 10 * time.Second}, {5000, 25 * time.Second}, {10000, 30 * time.Second}} {
		d := &plan.Desired{ProbeInterval: 30 * time.Second, Nodes: make([]*plan.DesiredNode, tc.nodes)}
		if got := c.waitRetry(d); got != tc.want {
			t.Errorf("%d nodes: retry after %s, want %s", tc.nodes, got, tc.want)
		}
	}
}
