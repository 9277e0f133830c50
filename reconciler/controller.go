package reconciler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
)

// Observer receives what the controller measures; metrics.Metrics
// implements it. A nil Observer is allowed.
type Observer interface {
	ObserveReconcile(result string, d time.Duration)
	ObserveAction(action, component, result string, d time.Duration)
	ObserveProbe(d time.Duration, reason string)
}

// Event is one thing the controller did, for progress output and logs.
type Event struct {
	Time      time.Time
	Node      string
	Component string
	Kind      string // probe, action-start, action-done, action-failed, rollback, halt
	Action    *Action
	Message   string
	Duration  time.Duration
}

// Controller reconciles every node of the current Desired continuously: a
// per-node queue, N workers, cluster-wide rollout budgets, backoff and
// status. `drover apply` runs it until the cluster settles; `drover
// daemon` runs it until stopped.
//
// Reconciling a node is level-triggered: probe it, diff it against the
// current Desired, ask the rollout planner which of its actions may start
// now (under one lock, so maxUnavailable and quorum are cluster-wide
// budgets), run at most one action, and queue the node again. Nothing is
// trusted from a previous pass.
type Controller struct {
	ControllerOptions

	queue *Queue

	mu       sync.Mutex
	desired  *Desired
	gen      int64
	load     loadState
	nodes    map[string]*nodeTrack
	inflight map[string]Action // node -> action running there
	halt     RolloutStatus
	// progress counts finished actions and desired changes; a node whose
	// last pass saw the current progress has nothing new to react to.
	progress uint64
	changed  chan struct{}
}

// ControllerOptions configure a Controller; zero values take defaults.
type ControllerOptions struct {
	Runner   inventory.Runner
	Executor *Executor
	Log      *zap.Logger
	Observer Observer
	// OnEvent, if set, is called for every event (must not block long).
	OnEvent func(Event)
	Workers int
	// ReconcileTimeout bounds one pass over one node, action included.
	ReconcileTimeout time.Duration
	// BackoffBase and BackoffMax shape the per-node retry after a failure.
	BackoffBase, BackoffMax time.Duration
	// WaitRetry is how soon a node whose actions the rollout holds back
	// is looked at again (it is also woken when any action ends).
	WaitRetry time.Duration
	// HistoryLen is how many actions per node the status keeps.
	HistoryLen int
	// Now is the clock (tests).
	Now func() time.Time
}

type loadState struct {
	ok   bool
	err  string
	time time.Time
}

type nodeTrack struct {
	obs           probes.Observed
	plan          NodePlan
	probed        bool
	seenProgress  uint64
	failures      int
	lastGoodProbe time.Time
	lastConverged time.Time
	history       []ActionRecord
	waiting       string
}

// ErrHalted is returned by RunUntilSettled when the rollout halted.
var ErrHalted = errors.New("rollout halted")

func (c *Controller) init() {
	if c.queue != nil {
		return
	}
	c.queue = NewQueue()
	c.nodes = map[string]*nodeTrack{}
	c.inflight = map[string]Action{}
	c.changed = make(chan struct{}, 1)
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.ReconcileTimeout <= 0 {
		c.ReconcileTimeout = 15 * time.Minute
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 2 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.WaitRetry <= 0 {
		c.WaitRetry = 5 * time.Second
	}
	if c.HistoryLen <= 0 {
		c.HistoryLen = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
}

// NewController returns a controller ready for SetDesired and Run.
func NewController(o ControllerOptions) *Controller {
	c := &Controller{ControllerOptions: o}
	c.init()
	return c
}

// SetDesired makes d the state to converge to. A new generation lifts a
// halted rollout and queues every node at once.
func (c *Controller) SetDesired(d *Desired) {
	c.mu.Lock()
	same := c.desired != nil && c.desired.Generation == d.Generation
	c.desired = d
	c.load = loadState{ok: true, time: c.Now()}
	if !same {
		c.gen++
		if c.halt.Halted && c.halt.Generation != d.Generation {
			c.halt = RolloutStatus{}
		}
	}
	if c.Executor != nil {
		c.Executor.Generation = d.Generation
	}
	// Forget nodes the manifest no longer has: no stale status or series.
	for name := range c.nodes {
		if d.Node(name) == nil {
			delete(c.nodes, name)
		}
	}
	for _, n := range d.Nodes {
		if c.nodes[n.Name] == nil {
			c.nodes[n.Name] = &nodeTrack{}
		}
	}
	c.progress++
	c.mu.Unlock()
	for _, n := range d.Nodes {
		c.queue.Add(n.Name)
	}
	c.notify()
}

// SetLoadError records a rejected manifest; the last good one stays.
func (c *Controller) SetLoadError(err error) {
	c.mu.Lock()
	// time stays that of the manifest in force.
	c.load = loadState{ok: false, err: err.Error(), time: c.load.time}
	c.mu.Unlock()
	c.notify()
}

// Run runs the workers until ctx is done, then lets in-flight actions
// finish for up to grace before returning.
func (c *Controller) Run(ctx context.Context, grace time.Duration) {
	var wg sync.WaitGroup
	// Actions get a context that survives ctx for the grace period, so a
	// stop never cuts an action between its steps without need.
	actx, cancelActions := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelActions()
	for range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.worker(ctx, actx)
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		c.Log.Warn("grace period over, cancelling in-flight actions", zap.Duration("grace", grace))
		cancelActions()
		<-done
	}
}

func (c *Controller) worker(ctx, actx context.Context) {
	for {
		node, ok := c.queue.Get()
		if !ok {
			return
		}
		next := c.safeReconcile(ctx, actx, node)
		c.queue.Done(node)
		if ctx.Err() != nil {
			return
		}
		if next >= 0 {
			c.queue.AddAfter(node, next)
		}
	}
}

// safeReconcile turns a panic into a failed pass, so one bad node cannot
// take the daemon down.
func (c *Controller) safeReconcile(ctx, actx context.Context, node string) (next time.Duration) {
	defer func() {
		if r := recover(); r != nil {
			c.Log.Error("reconcile panicked", zap.String("node", node), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			next = c.fail(node)
		}
	}()
	return c.reconcile(ctx, actx, node)
}

// reconcile does one pass over one node and says when to look again
// (negative: not at all, the node is gone).
func (c *Controller) reconcile(ctx, actx context.Context, name string) time.Duration {
	start := c.Now()
	c.mu.Lock()
	d := c.desired
	progress := c.progress
	c.mu.Unlock()
	if d == nil {
		return -1
	}
	dn := d.Node(name)
	if dn == nil {
		return -1
	}
	pctx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
	obs := probes.Probe(pctx, c.Runner, dn.Target, RequestFor(d, dn))
	cancel()
	c.observeProbe(obs)
	c.emit(Event{Node: name, Kind: "probe", Message: probeMessage(obs), Duration: obs.Duration})
	plan := DiffNode(d, dn, obs)

	c.mu.Lock()
	if c.desired != d { // the manifest changed under us: start over
		c.mu.Unlock()
		return 0
	}
	st := c.nodes[name]
	st.obs, st.plan, st.probed = obs, plan, true
	st.seenProgress = progress
	if obs.Known {
		st.lastGoodProbe = obs.ProbedAt
	}
	if !obs.Known {
		st.failures++
		c.mu.Unlock()
		c.record(start, "unknown")
		c.notify()
		return c.backoff(st.failures)
	}
	if len(plan.Actions) == 0 {
		st.failures = 0
		st.lastConverged = c.Now()
		st.waiting = ""
		c.mu.Unlock()
		c.record(start, "converged")
		c.notify()
		return c.interval(d)
	}
	a, waiting := c.admitLocked(d, name)
	st.waiting = waiting
	c.mu.Unlock()
	c.notify()
	if a == nil {
		c.record(start, "waiting")
		return c.WaitRetry
	}

	err := c.runAction(actx, d, dn, *a, obs)

	c.mu.Lock()
	delete(c.inflight, name)
	c.progress++
	if err != nil {
		st.failures++
	} else {
		st.failures = 0
	}
	failures := st.failures
	c.mu.Unlock()
	c.wakeWaiting(d)
	c.notify()
	if err != nil {
		c.record(start, "error")
		return c.backoff(failures)
	}
	c.record(start, "action")
	return 0
}

// admitLocked asks the rollout planner whether one of the node's actions
// may start now and marks it in flight. It returns why not otherwise.
func (c *Controller) admitLocked(d *Desired, name string) (*Action, string) {
	if _, busy := c.inflight[name]; busy {
		return nil, "an action is already running"
	}
	plan := Plan{Generation: d.Generation}
	obs := make(map[string]probes.Observed, len(c.nodes))
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || !st.probed {
			plan.Nodes = append(plan.Nodes, NodePlan{Node: n.Name, Reason: "not probed yet"})
			continue
		}
		plan.Nodes = append(plan.Nodes, st.plan)
		obs[n.Name] = st.obs
	}
	running := make([]Action, 0, len(c.inflight))
	for _, a := range c.inflight {
		running = append(running, a)
	}
	wave := NextWave(d, plan, obs, RolloutState{Halt: c.halt, InFlight: running})
	for _, a := range wave.Actions {
		if a.Node == name {
			c.inflight[name] = a
			return &a, ""
		}
	}
	if c.halt.Halted {
		return nil, "rollout halted: " + c.halt.Reason
	}
	for _, w := range wave.Waiting {
		return nil, w
	}
	return nil, "waiting for the rollout"
}

// runAction runs one admitted action and handles a failed health gate by
// the rollout's onFailure policy.
func (c *Controller) runAction(ctx context.Context, d *Desired, dn *DesiredNode, a Action, obs probes.Observed) error {
	want := dn.Component(a.Component)
	have := obs.Components[a.Component]
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: "action-start", Action: &a, Message: describe(a)})
	start := c.Now()
	actx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
	err := c.Executor.Do(actx, dn, a, want, have)
	cancel()
	dur := c.Now().Sub(start)
	c.recordAction(dn.Name, a, err, dur)
	if err == nil {
		c.emit(Event{Node: dn.Name, Component: a.Component, Kind: "action-done", Action: &a, Message: describe(a), Duration: dur})
		return nil
	}
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: "action-failed", Action: &a, Message: err.Error(), Duration: dur})
	if !errors.Is(err, ErrUnhealthy) {
		return err
	}
	// The health gate failed: the batch failed. Roll back if asked and
	// possible, then halt until the manifest changes.
	reason := fmt.Sprintf("%s %s on %s failed its health check: %v", a.Kind, a.Component, dn.Name, err)
	if d.Rollout.OnFailure == "rollback" && a.Kind == ActionUpgrade && a.From != "" {
		rb := Action{Node: dn.Name, Component: a.Component, Kind: ActionRollback, From: a.To, To: a.From, Reason: "health check failed after upgrade", Disruptive: true}
		c.emit(Event{Node: dn.Name, Component: a.Component, Kind: "rollback", Action: &rb, Message: describe(rb)})
		rstart := c.Now()
		rctx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
		rerr := c.Executor.Do(rctx, dn, rb, want, have)
		cancel()
		c.recordAction(dn.Name, rb, rerr, c.Now().Sub(rstart))
		if rerr != nil {
			reason += fmt.Sprintf("; rollback to %s failed: %v", a.From, rerr)
		} else {
			reason += fmt.Sprintf("; rolled back to %s", a.From)
		}
	}
	c.mu.Lock()
	c.halt = RolloutStatus{Halted: true, Reason: reason, Component: a.Component, Node: dn.Name, Generation: d.Generation}
	c.mu.Unlock()
	c.Log.Error("rollout halted", zap.String("node", dn.Name), zap.String("component", a.Component), zap.String("reason", reason))
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: "halt", Message: reason})
	return err
}

func (c *Controller) recordAction(node string, a Action, err error, d time.Duration) {
	rec := ActionRecord{Time: c.Now(), Action: string(a.Kind), Component: a.Component, Version: a.To, Result: "success", Duration: d}
	if err != nil {
		rec.Result, rec.Message = "failure", err.Error()
	}
	log := c.Log.With(zap.String("node", node), zap.String("component", a.Component), zap.String("action", string(a.Kind)),
		zap.String("from", a.From), zap.String("to", a.To), zap.Duration("duration", d))
	if err != nil {
		log.Error("action failed", zap.Error(err))
	} else {
		log.Info("action succeeded")
	}
	if c.Observer != nil {
		c.Observer.ObserveAction(string(a.Kind), a.Component, rec.Result, d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.nodes[node]; st != nil {
		st.history = append(st.history, rec)
		if len(st.history) > c.HistoryLen {
			st.history = slices.Delete(st.history, 0, len(st.history)-c.HistoryLen)
		}
	}
}

// wakeWaiting queues every node with pending actions: the action that
// just ended may have freed the budget they wait for.
func (c *Controller) wakeWaiting(d *Desired) {
	c.mu.Lock()
	var wake []string
	for _, n := range d.Nodes {
		if st := c.nodes[n.Name]; st != nil && len(st.plan.Actions) > 0 {
			wake = append(wake, n.Name)
		}
	}
	c.mu.Unlock()
	for _, n := range wake {
		c.queue.Add(n)
	}
}

func (c *Controller) fail(node string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, node)
	st := c.nodes[node]
	if st == nil {
		return -1
	}
	st.failures++
	return c.backoff(st.failures)
}

// backoff is exponential per node, capped, with jitter.
func (c *Controller) backoff(failures int) time.Duration {
	d := c.BackoffBase
	for i := 1; i < failures && d < c.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// interval is the probe interval with ±20% jitter, so a thousand nodes do
// not all connect at once.
func (c *Controller) interval(d *Desired) time.Duration {
	base := d.ProbeInterval
	if base <= 0 {
		base = 30 * time.Second
	}
	spread := base / 5
	return base - spread + rand.N(2*spread+1)
}

func (c *Controller) record(start time.Time, result string) {
	if c.Observer != nil {
		c.Observer.ObserveReconcile(result, c.Now().Sub(start))
	}
}

func (c *Controller) observeProbe(o probes.Observed) {
	if c.Observer != nil {
		c.Observer.ObserveProbe(o.Duration, o.Reason)
	}
}

func (c *Controller) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = c.Now()
	}
	if c.OnEvent != nil {
		c.OnEvent(e)
	}
}

// notify wakes RunUntilSettled.
func (c *Controller) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func describe(a Action) string {
	switch {
	case a.From != "" && a.To != "" && a.From != a.To:
		return fmt.Sprintf("%s %s %s -> %s", a.Kind, a.Component, a.From, a.To)
	case a.To != "":
		return fmt.Sprintf("%s %s %s", a.Kind, a.Component, a.To)
	default:
		return fmt.Sprintf("%s %s", a.Kind, a.Component)
	}
}

func probeMessage(o probes.Observed) string {
	if o.Known {
		return "probed"
	}
	return "unknown: " + o.Reason + ": " + o.Error
}
