package reconciler

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/state"
)

// TestControllerStoreKeepsHaltAndHistoryAcrossRestart: app 3.0 fails its
// health gate and halts the rollout; the controller stops and a new one
// starts on the same store file and the same manifest. The halt is still
// there with the same reason and holds (no action runs), every node's
// history and the failed node's failures are as before, and the
// generation count goes on from where it was. A new manifest lifts the
// halt as always.
func TestControllerStoreKeepsHaltAndHistoryAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open := func() *state.Bolt {
		s, err := state.OpenBolt(path, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := newFleet(t, 3)
	store := open()
	c, _, stop := f.stoppableController(ControllerOptions{Store: store})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1", onFailure: "rollback"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	bad := f.desired(spec{app: "3.0", maxUnavailable: "1", onFailure: "rollback", healthTimeout: "300ms"})
	c.SetDesired(bad)
	waitFor(t, 4*time.Minute, "halt", func() bool { return c.Status().Rollout.Halted })
	waitFor(t, 2*time.Minute, "rollback settled", func() bool { return f.allAt("app", "1.0") })
	stop()
	before := c.Status()
	store.Close()
	if before.Generation != 2 {
		t.Fatalf("generation before the restart = %d, want 2", before.Generation)
	}

	f.resetCounts()
	store = open()
	defer store.Close()
	c2, _, stop2 := f.stoppableController(ControllerOptions{Store: store})
	defer stop2()
	c2.SetDesired(f.desired(spec{app: "3.0", maxUnavailable: "1", onFailure: "rollback", healthTimeout: "300ms"}))
	waitFor(t, 4*time.Minute, "every node probed after the restart", func() bool {
		for _, n := range c2.Status().Nodes {
			if n.LastProbe.IsZero() {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // time for an action that should not start
	after := c2.Status()
	if !after.Rollout.Halted || after.Rollout.Reason != before.Rollout.Reason || after.Rollout.Node != before.Rollout.Node {
		t.Errorf("halt after the restart = %+v\nwant %+v", after.Rollout, before.Rollout)
	}
	if after.Generation != before.Generation {
		t.Errorf("generation after the restart = %d, want %d", after.Generation, before.Generation)
	}
	f.mu.Lock()
	attempts := len(f.attempts)
	f.mu.Unlock()
	if attempts != 0 {
		t.Errorf("actions ran while the restored halt holds: %d nodes", attempts)
	}
	for i, n := range after.Nodes {
		was := before.Nodes[i]
		if len(was.History) == 0 {
			t.Fatalf("%s had no history before the restart", was.Name)
		}
		got, _ := json.Marshal(n.History)
		want, _ := json.Marshal(was.History)
		if string(got) != string(want) {
			t.Errorf("%s history after the restart:\n%s\nwant\n%s", n.Name, got, want)
		}
		if n.Name == before.Rollout.Node && n.ConsecutiveFailures != was.ConsecutiveFailures {
			t.Errorf("%s failures after the restart = %d, want %d", n.Name, n.ConsecutiveFailures, was.ConsecutiveFailures)
		}
	}

	c2.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1", onFailure: "rollback"}))
	waitFor(t, 4*time.Minute, "app 2.0 after the halt", func() bool { return converged(c2) && f.allAt("app", "2.0") })
	if st := c2.Status(); st.Rollout.Halted || st.Generation != 3 {
		t.Errorf("after a new manifest: halted %v, generation %d (want 3)", st.Rollout.Halted, st.Generation)
	}
	// The lifted halt is gone from the store too.
	if _, err := store.Get(keyHalt); err != state.ErrNotFound {
		t.Errorf("halt record after the halt was lifted: %v", err)
	}
}

// TestControllerStoreForgetsRemovedNodes: a node the manifest drops loses
// its record, and an unchanged record is not written again.
func TestControllerStoreForgetsRemovedNodes(t *testing.T) {
	f := newFleet(t, 2)
	store := &countingStore{Memory: state.NewMemory()}
	c, _ := f.controller(ControllerOptions{Store: store})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "2", probeInterval: "1s"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	recs, _ := store.List(keyNodePrefix)
	if len(recs) != 2 {
		t.Fatalf("node records = %d, want 2", len(recs))
	}
	puts := store.count()
	time.Sleep(2500 * time.Millisecond) // probes of a converged cluster change nothing
	if n := store.count(); n != puts {
		t.Errorf("%d writes while nothing changed", n-puts)
	}
	f.names = f.names[:1]
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "2", probeInterval: "1s"}))
	recs, _ = store.List(keyNodePrefix)
	if len(recs) != 1 || !strings.HasSuffix(recs[0].Key, "/n1") {
		t.Errorf("node records after n2 left the manifest: %q", recs)
	}
}

type countingStore struct {
	*state.Memory
	mu   sync.Mutex
	puts int
}

func (m *countingStore) Put(k string, v []byte) error {
	m.mu.Lock()
	m.puts++
	m.mu.Unlock()
	return m.Memory.Put(k, v)
}

func (m *countingStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// TestControllerStoreKeepsSuspended: the suspended flag (set by issue
// 19's commands) comes back after a restart, before any manifest, and a
// flag set before the first manifest does not drop node records.
func TestControllerStoreKeepsSuspended(t *testing.T) {
	store := state.NewMemory()
	if err := store.Put(keyNodePrefix+"n1", []byte(`{"failures":3}`)); err != nil {
		t.Fatal(err)
	}
	c := NewController(ControllerOptions{Store: store})
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	if c.Suspended() {
		t.Fatal("suspended in a store that never said so")
	}
	if err := c.SetSuspended(true); err != nil {
		t.Fatal(err)
	}
	c2 := NewController(ControllerOptions{Store: store})
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	if !c2.Suspended() {
		t.Error("the suspended flag did not survive a restart")
	}
	if _, err := store.Get(keyNodePrefix + "n1"); err != nil {
		t.Errorf("n1's record before any manifest: %v", err)
	}
}

// TestControllerRestoreRefusesDamagedRecord: a record that is not what
// the controller wrote stops the start with its key, rather than
// forgetting a halt.
func TestControllerRestoreRefusesDamagedRecord(t *testing.T) {
	store := state.NewMemory()
	if err := store.Put(keyHalt, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	err := NewController(ControllerOptions{Store: store}).Restore()
	if err == nil || !strings.Contains(err.Error(), "record "+keyHalt) {
		t.Errorf("Restore of a damaged halt: %v", err)
	}
}

// TestControllerStoreKeepsFailedStep: an action that failed at a step
// holds its node's rollout slot and counts against rollout.maxFailures
// until an action there succeeds; a restart must not free the slot or
// reset the count. Once the failure is over, the record says so too.
func TestControllerStoreKeepsFailedStep(t *testing.T) {
	store := state.NewMemory()
	d := scaleDesired(3, "g1")
	c := NewController(ControllerOptions{Store: store})
	c.SetDesired(d)
	failed := plan.Action{Node: "n00001", Component: "app", Kind: plan.ActionUpgrade, From: "1.0", To: "2.0", Disruptive: true}
	if n := c.failedStep(d, "n00001", failed); n != 1 {
		t.Fatalf("%d failed nodes, want 1", n)
	}
	c.saveNode("n00001")

	restart := func() *Controller {
		c := NewController(ControllerOptions{Store: store})
		if err := c.Restore(); err != nil {
			t.Fatal(err)
		}
		c.SetDesired(scaleDesired(3, "g1"))
		return c
	}
	c2 := restart()
	c2.mu.Lock()
	got, ok := c2.failed["n00001"]
	n := len(c2.failed)
	c2.mu.Unlock()
	if !ok || got != failed || n != 1 {
		t.Fatalf("failed actions after the restart: %v (%d nodes), want n00001's %+v", got, n, failed)
	}

	// The failure is over (an action succeeded there): the record forgets it.
	c2.mu.Lock()
	delete(c2.failed, "n00001")
	c2.mu.Unlock()
	c2.saveNode("n00001")
	c3 := restart()
	c3.mu.Lock()
	defer c3.mu.Unlock()
	if len(c3.failed) != 0 {
		t.Errorf("failed actions after the failure ended and a restart: %v", c3.failed)
	}
}
