package reconciler

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/state"
)

// probesSince counts the controller's probes of each node at or after t.
func (f *fleet) probesSince(t time.Time) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for n, ts := range f.probesOf {
		for _, at := range ts {
			if !at.Before(t) {
				out[n]++
			}
		}
	}
	return out
}

func (f *fleet) attemptCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ts := range f.attempts {
		n += len(ts)
	}
	return n
}

// TestControllerSuspendHoldsActionsKeepsProbing: suspended, an edit that
// wants every node upgraded starts nothing, though every node is probed
// again (the status is current and says suspended, per node too). The
// flag survives a restart on the same store; resumed, the cluster
// converges at once.
func TestControllerSuspendHoldsActionsKeepsProbing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f := newFleet(t, 3)
	store, err := state.OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, _, stop := f.stoppableController(ControllerOptions{Store: store})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3", probeInterval: "300ms"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	if err := c.SetSuspended(true); err != nil {
		t.Fatal(err)
	}
	f.resetCounts()
	edited := time.Now()
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "3", probeInterval: "300ms"}))
	waitFor(t, time.Minute, "two probes of every node after the edit", func() bool {
		p := f.probesSince(edited)
		return p["n1"] >= 2 && p["n2"] >= 2 && p["n3"] >= 2
	})
	if n := f.attemptCount(); n != 0 {
		t.Errorf("%d actions started while suspended", n)
	}
	st := c.Status()
	if !st.Suspended {
		t.Error("status does not say suspended")
	}
	for _, n := range st.Nodes {
		if n.Converged || !strings.Contains(n.Reason, WaitingSuspended) || n.Waiting != WaitingSuspended {
			t.Errorf("%s: converged %v, reason %q, waiting %q; want pending and %q", n.Name, n.Converged, n.Reason, n.Waiting, WaitingSuspended)
		}
	}
	stop()
	store.Close()

	store, err = state.OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f.resetCounts()
	c2, _, _ := f.stoppableController(ControllerOptions{Store: store})
	restarted := time.Now()
	c2.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "3", probeInterval: "300ms"}))
	waitFor(t, time.Minute, "two probes of every node after the restart", func() bool {
		p := f.probesSince(restarted)
		return p["n1"] >= 2 && p["n2"] >= 2 && p["n3"] >= 2
	})
	if !c2.Suspended() || !c2.Status().Suspended {
		t.Fatal("not suspended after the restart")
	}
	if n := f.attemptCount(); n != 0 {
		t.Errorf("%d actions started after the restart while suspended", n)
	}
	if err := c2.SetSuspended(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 4*time.Minute, "app 2.0 after resume", func() bool { return converged(c2) && f.allAt("app", "2.0") })
	if c2.Status().Suspended {
		t.Error("status still says suspended")
	}
	f.checkNoOverlap()
}

// TestControllerRetryLiftsHalt: n1's upload fails and halts the rollout
// (no failure budget). Once the cause is gone the halt still holds (it
// holds until the manifest changes); Retry lifts it for the same
// manifest, says what it lifted, and the cluster converges. A second
// Retry has nothing to lift.
func TestControllerRetryLiftsHalt(t *testing.T) {
	f := newFleet(t, 3)
	f.set(func() { f.failStep["n1"] = "step: upload artifact" })
	c, _ := f.controller(ControllerOptions{BackoffBase: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1", probeInterval: "300ms"}))
	waitFor(t, 4*time.Minute, "halt", func() bool { return c.Status().Rollout.Halted })
	halt := c.Status().Rollout
	f.set(func() { f.failStep["n1"] = "" })
	f.resetCounts()
	fixed := time.Now()
	waitFor(t, time.Minute, "two probes of every node after the fix", func() bool {
		p := f.probesSince(fixed)
		return p["n1"] >= 2 && p["n2"] >= 2 && p["n3"] >= 2
	})
	if n := f.attemptCount(); n != 0 || !c.Status().Rollout.Halted {
		t.Fatalf("before retry: %d actions, halted %v; want the halt to hold", n, c.Status().Rollout.Halted)
	}
	r, err := c.Retry()
	if err != nil {
		t.Fatal(err)
	}
	if r.Halt != halt.Reason || !slices.Contains(r.Nodes, halt.Node) {
		t.Errorf("Retry = %+v, want the halt %q lifted and %s forgiven", r, halt.Reason, halt.Node)
	}
	waitFor(t, 4*time.Minute, "app 1.0 after retry", func() bool { return converged(c) && f.allAt("app", "1.0") })
	if st := c.Status(); st.Rollout.Halted || st.Generation != 1 {
		t.Errorf("after retry: halted %v, generation %d (want 1: the same manifest)", st.Rollout.Halted, st.Generation)
	}
	if _, err := c.Retry(); !errors.Is(err, ErrNothingToRetry) {
		t.Errorf("second Retry: %v, want ErrNothingToRetry", err)
	}
	f.checkNoOverlap()
}

// TestControllerReconcileNow: with an hour's probe interval, asking for
// n2 probes n2 at once and no other node; an unknown name queues nothing
// and says which; no manifest, no probe.
func TestControllerReconcileNow(t *testing.T) {
	f := newFleet(t, 3)
	c, _ := f.controller(ControllerOptions{})
	if _, _, err := c.ReconcileNow(nil); !errors.Is(err, ErrNoManifest) {
		t.Errorf("without a manifest: %v, want ErrNoManifest", err)
	}
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3", probeInterval: "1h"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	time.Sleep(100 * time.Millisecond) // the converging passes end
	asked := time.Now()
	queued, at, err := c.ReconcileNow([]string{"n2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0] != "n2" {
		t.Errorf("queued %v, want [n2]", queued)
	}
	if at.Before(asked) {
		t.Errorf("ReconcileNow's time %s is before the request %s", at, asked)
	}
	waitFor(t, 30*time.Second, "a probe of n2", func() bool { return f.probesSince(asked)["n2"] >= 1 })
	waitFor(t, 30*time.Second, "n2's status to show it", func() bool {
		for _, n := range c.Status().Nodes {
			if n.Name == "n2" {
				return !n.LastProbeAttempt.Before(at)
			}
		}
		return false
	})
	if p := f.probesSince(asked); p["n1"]+p["n3"] != 0 {
		t.Errorf("other nodes probed: %v", p)
	}
	if _, _, err := c.ReconcileNow([]string{"n1", "nope"}); !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown node: %v, want ErrUnknownNode naming it", err)
	}
	time.Sleep(100 * time.Millisecond)
	if p := f.probesSince(asked); p["n1"] != 0 {
		t.Errorf("n1 probed though the request named an unknown node: %v", p)
	}
}

// TestControllerPlanWithDiffs: suspended after an edit of app's config,
// the console's plan shows each node the changed line, reading each
// node's copy once (not again until the node is probed again), and the
// sensitive file only as changed, never read.
func TestControllerPlanWithDiffs(t *testing.T) {
	f := newFleet(t, 2)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "2", appConfig: "limit=1\n"}))
	deadline := time.Now().Add(20 * time.Second)
	for !(converged(c) && f.allAt("app", "1.0")) {
		if time.Now().After(deadline) {
			for _, n := range c.Status().Nodes {
				t.Logf("%s: %s %+v", n.Name, n.Reason, n.LastAction)
			}
			t.Fatal("app 1.0 with its config did not converge")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.SetSuspended(true); err != nil {
		t.Fatal(err)
	}
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "2", appConfig: "limit=2\n"}))
	// The first pass after an edit plans from the last probe.
	waitFor(t, time.Minute, "every node planned for the edit and held", func() bool {
		for _, n := range c.Status().Nodes {
			if n.Waiting != WaitingSuspended {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // the passes end
	f.mu.Lock()
	f.fileReads = 0
	f.mu.Unlock()
	p := c.PlanWithDiffs(context.Background())
	for _, np := range p.Nodes {
		var cfg, secret *plan.FileChange
		for i, fc := range np.Changes["app"] {
			switch {
			case strings.HasSuffix(fc.Path, "conf/app.cfg"):
				cfg = &np.Changes["app"][i]
			case strings.HasSuffix(fc.Path, "conf/secret.cfg"):
				secret = &np.Changes["app"][i]
			}
		}
		if cfg == nil || !strings.Contains(cfg.Diff, "\n-limit=1\n+limit=2\n") {
			t.Errorf("%s: app.cfg change %+v, want the diff of the edited line", np.Node, cfg)
		}
		if secret == nil || !secret.Sensitive || secret.Note != plan.NoteSensitive || strings.Contains(secret.Diff, "secret-") {
			t.Errorf("%s: secret.cfg change %+v, want only %q", np.Node, secret, plan.NoteSensitive)
		}
	}
	c.PlanWithDiffs(context.Background())
	f.mu.Lock()
	reads := f.fileReads
	f.mu.Unlock()
	if reads != 2 {
		t.Errorf("%d file reads for two views of two nodes, want 2 (one per node until its next probe)", reads)
	}
	if plain := c.CurrentPlan(); plain.Nodes[0].Changes != nil {
		t.Errorf("CurrentPlan carries diffs: %+v", plain.Nodes[0].Changes)
	}
}
