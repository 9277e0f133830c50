package reconciler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/state"
)

// What the controller keeps in ControllerOptions.Store, so a restarted
// daemon goes on where it stopped: a halt still holds (with its reason),
// a node's history and backoff are still there, and the count of accepted
// manifests does not start again at 1. What is installed is read from the
// nodes' receipts as always; the store holds only what the controller
// decided. Records are JSON under these keys:
const (
	keyDaemon     = "daemon"       // daemonRecord
	keyHalt       = "rollout/halt" // RolloutStatus; absent when not halted
	keyNodePrefix = "node/"        // + node name: nodeRecord
)

// daemonRecord is the cluster-wide part of the state.
type daemonRecord struct {
	// Generation counts accepted manifests; Hash is the last one's.
	Generation int64  `json:"generation"`
	Hash       string `json:"hash,omitempty"`
	// Suspended: the operator stopped every action (issue 19's suspend
	// and resume commands set it; kept here so a restart keeps it).
	Suspended bool `json:"suspended,omitempty"`
}

// nodeRecord is one node's part.
type nodeRecord struct {
	History  []plan.ActionRecord `json:"history,omitempty"`
	Failures int                 `json:"failures,omitempty"`
	RetryAt  time.Time           `json:"retryAt,omitzero"`
	// Failed is the action that failed at a step there and has not
	// succeeded since (Controller.failed): it holds the node's rollout
	// slot and counts against rollout.maxFailures across a restart.
	Failed *plan.Action `json:"failed,omitempty"`
}

// persistence is the controller's bookkeeping for the store.
type persistence struct {
	// restored holds the node records read at Restore until SetDesired
	// makes the node (under Controller.mu).
	restored  map[string]nodeRecord
	genHash   string // the hash the generation count was last raised for (under mu)
	suspended bool   // (under mu)
	// written is the value last put per key, so an unchanged record costs
	// no write (under Controller.persistMu).
	written map[string][]byte
	// seen is what each node's record was made from last time, so a pass
	// that changed nothing (most probes) costs no encoding (under mu).
	seen map[string]nodeMark
	// sweptFor is the manifest for which the records of nodes it does not
	// have were last dropped (under persistMu): the sweep reads every key
	// written, so it runs once per manifest, not after every probe (at
	// 10,000 nodes that was 10,000 keys per probe, most of the daemon's CPU).
	sweptFor *plan.Desired
	sweeps   int // how many sweeps ran (tests)
}

// nodeMark tells whether a node's record may have changed: its history
// only grows at the end (dropping at the front), so its length and last
// time change with every action.
type nodeMark struct {
	actions  int
	last     time.Time
	failures int
	retryAt  time.Time
	failed   plan.Action
}

// Restore reads the store, if there is one: call it before the first
// SetDesired. A halt comes back as it was and is lifted, as always, only
// by a manifest of another generation.
func (c *Controller) Restore() error {
	if c.Store == nil {
		return nil
	}
	var d daemonRecord
	rawDaemon, err := getJSON(c.Store, keyDaemon, &d)
	if err != nil {
		return err
	}
	var halt plan.RolloutStatus
	rawHalt, err := getJSON(c.Store, keyHalt, &halt)
	if err != nil {
		return err
	}
	recs, err := c.Store.List(keyNodePrefix)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	nodes := make(map[string]nodeRecord, len(recs))
	for _, r := range recs {
		var n nodeRecord
		if err := json.Unmarshal(r.Value, &n); err != nil {
			return fmt.Errorf("state store: record %s: %w", r.Key, err)
		}
		nodes[strings.TrimPrefix(r.Key, keyNodePrefix)] = n
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen, c.persist.genHash, c.persist.suspended = d.Generation, d.Hash, d.Suspended
	if halt.Halted {
		c.halt = halt
	}
	c.persist.restored = nodes
	c.persist.written = map[string][]byte{}
	for k, v := range map[string][]byte{keyDaemon: rawDaemon, keyHalt: rawHalt} {
		if v != nil {
			c.persist.written[k] = v
		}
	}
	for _, r := range recs {
		c.persist.written[r.Key] = r.Value
	}
	if halt.Halted {
		c.Log.Warn("rollout still halted from before the restart", zap.String("reason", halt.Reason), zap.String("generation", halt.Generation))
	}
	return nil
}

// sameGeneration says whether d is the manifest the generation count was
// last raised for (also across a restart), and notes it as such (under mu).
func (c *Controller) sameGeneration(d *plan.Desired) bool {
	same := c.persist.genHash == d.Generation
	c.persist.genHash = d.Generation
	return same
}

// trackFor makes the status of a node new to the controller, from its
// record in the store if it has one (under mu).
func (c *Controller) trackFor(name string) *nodeTrack {
	st := &nodeTrack{}
	if r, ok := c.persist.restored[name]; ok {
		delete(c.persist.restored, name)
		st.history, st.failures, st.retryAt = r.History, r.Failures, r.RetryAt
		if r.Failed != nil {
			c.failed[name] = *r.Failed
		}
	}
	return st
}

// Suspended says whether the operator suspended the daemon.
func (c *Controller) Suspended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.persist.suspended
}

// SetSuspended records the operator's suspend or resume. Suspended, the
// controller goes on probing every node and reporting (its status says
// suspended), but admits no action: one already running ends as it
// would. Resumed, every node is looked at again at once. The flag is
// written to the store, so a restarted daemon (or a new leader) is still
// suspended. An error says the store did not keep it; the controller
// acts on it anyway until it stops.
func (c *Controller) SetSuspended(s bool) error {
	c.mu.Lock()
	was := c.persist.suspended
	c.persist.suspended = s
	d := c.desired
	c.progress++
	c.mu.Unlock()
	switch {
	case s && !was:
		c.Log.Warn("suspended by the operator: probing goes on, no action starts")
	case !s && was:
		c.Log.Info("resumed by the operator")
	}
	err := c.saveCluster()
	if !s && d != nil {
		for _, n := range d.Nodes {
			c.queue.Add(n.Name)
		}
	}
	c.notify()
	return err
}

// saveNode writes the node's record if it changed; a node the manifest
// no longer has loses its record.
func (c *Controller) saveNode(name string) {
	if c.Store == nil {
		return
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	st := c.nodes[name]
	var rec nodeRecord
	if st != nil {
		failed, hasFailed := c.failed[name]
		mark := nodeMark{actions: len(st.history), failures: st.failures, retryAt: st.retryAt, failed: failed}
		if len(st.history) > 0 {
			mark.last = st.history[len(st.history)-1].Time
		}
		if old, ok := c.persist.seen[name]; ok && old == mark {
			c.mu.Unlock()
			return
		}
		if c.persist.seen == nil {
			c.persist.seen = map[string]nodeMark{}
		}
		c.persist.seen[name] = mark
		rec = nodeRecord{History: st.history, Failures: st.failures, RetryAt: st.retryAt}
		if hasFailed {
			rec.Failed = &failed
		}
	} else {
		delete(c.persist.seen, name)
	}
	v, err := json.Marshal(rec)
	c.mu.Unlock()
	if err != nil {
		c.Log.Error("state store: encode node record", zap.String("node", name), zap.Error(err))
		return
	}
	if st == nil {
		c.writeLocked(keyNodePrefix+name, nil)
		return
	}
	c.writeLocked(keyNodePrefix+name, v)
}

// saveCluster writes the generation count, the suspended flag and the
// halt if they changed, and drops the records of nodes the manifest no
// longer has.
func (c *Controller) saveCluster() error {
	if c.Store == nil {
		return nil
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	d, _ := json.Marshal(daemonRecord{Generation: c.gen, Hash: c.persist.genHash, Suspended: c.persist.suspended})
	var halt []byte
	if c.halt.Halted {
		halt, _ = json.Marshal(c.halt)
	}
	var gone []string
	sweep := c.desired
	if sweep != nil && sweep != c.persist.sweptFor {
		// Restored records of nodes the manifest does not have are
		// forgotten, as the nodes are.
		c.persist.sweeps++
		c.persist.restored = nil
		for k := range c.persist.written {
			if name, ok := strings.CutPrefix(k, keyNodePrefix); ok && c.nodes[name] == nil {
				gone = append(gone, k)
			}
		}
	}
	c.mu.Unlock()
	err := c.writeLocked(keyDaemon, d)
	if herr := c.writeLocked(keyHalt, halt); err == nil {
		err = herr
	}
	swept := true
	for _, k := range gone {
		if c.writeLocked(k, nil) != nil {
			swept = false // tried again at the next save
		}
	}
	if sweep != nil && swept {
		c.persist.sweptFor = sweep
	}
	return err
}

// writeLocked puts v under key (nil: deletes it) unless that is what the
// store holds already (under persistMu). A failed write is logged and
// tried again at the next change: the daemon goes on without it.
func (c *Controller) writeLocked(key string, v []byte) error {
	if c.persist.written == nil {
		c.persist.written = map[string][]byte{}
	}
	old, known := c.persist.written[key]
	if known && bytes.Equal(old, v) || !known && v == nil {
		return nil
	}
	var err error
	if v == nil {
		err = c.Store.Delete(key)
	} else {
		err = c.Store.Put(key, v)
	}
	if err != nil {
		c.Log.Error("state store: write failed", zap.String("key", key), zap.Error(err))
		return err
	}
	if v == nil {
		delete(c.persist.written, key)
	} else {
		c.persist.written[key] = v
	}
	return nil
}

// getJSON decodes the record at key into v and returns its bytes (nil
// and no error when there is none).
func getJSON(s state.Store, key string, v any) ([]byte, error) {
	b, err := s.Get(key)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("state store: record %s: %w", key, err)
	}
	return b, nil
}

// StoredStatus is the cluster as the store has it, for a daemon that
// probes nothing (a standby of several on etcd): the manifest's nodes,
// unknown to it, with the history, failures and halt the leader wrote,
// so every daemon shows the same history.
func StoredStatus(d *plan.Desired, s state.Store) (plan.ClusterStatus, error) {
	var rec daemonRecord
	if _, err := getJSON(s, keyDaemon, &rec); err != nil {
		return plan.ClusterStatus{}, err
	}
	var halt plan.RolloutStatus
	if _, err := getJSON(s, keyHalt, &halt); err != nil {
		return plan.ClusterStatus{}, err
	}
	recs, err := s.List(keyNodePrefix)
	if err != nil {
		return plan.ClusterStatus{}, fmt.Errorf("state store: %w", err)
	}
	nodes := make(map[string]nodeRecord, len(recs))
	for _, r := range recs {
		var n nodeRecord
		if err := json.Unmarshal(r.Value, &n); err != nil {
			return plan.ClusterStatus{}, fmt.Errorf("state store: record %s: %w", r.Key, err)
		}
		nodes[strings.TrimPrefix(r.Key, keyNodePrefix)] = n
	}
	cs := plan.ClusterStatus{Cluster: d.Cluster, Generation: rec.Generation, Hash: rec.Hash, LoadSuccess: true, Paused: d.Paused}
	if halt.Halted {
		cs.Rollout = halt
	}
	p := plan.Plan{Generation: d.Generation}
	for _, n := range d.Nodes {
		p.Nodes = append(p.Nodes, plan.NodePlan{Node: n.Name, Reason: "not probed by this daemon (a standby)"})
	}
	cs.Nodes = plan.NodeStatuses(d, nil, p)
	for i := range cs.Nodes {
		ns := &cs.Nodes[i]
		r, ok := nodes[ns.Name]
		if !ok {
			continue
		}
		ns.ConsecutiveFailures = r.Failures
		ns.History = r.History
		if len(r.History) > 0 {
			last := r.History[len(r.History)-1]
			ns.LastAction = &last
		}
	}
	return cs, nil
}
