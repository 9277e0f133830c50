package reconciler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/state"
)

// Observer receives what the controller measures; metrics.Metrics
// implements it. A nil Observer is allowed. Reconcile results are
// "success" (the pass did what it could: converged, acted, or waits for
// the rollout) or "failure" (the node was unreachable or its action
// failed); action results are those of ActionRecord.
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
	Kind      EventKind
	Action    *plan.Action
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
// trusted from a previous pass but one thing: the first pass after a
// manifest change plans from the node's last probe when it is recent and
// nothing ran since (lastProbe), so an edit starts its rollout at once.
type Controller struct {
	ControllerOptions

	queue *Queue

	mu      sync.Mutex
	desired *plan.Desired
	gen     int64
	load    loadState
	nodes   map[string]*nodeTrack
	// inflight holds the action running on each node, and keeps it
	// after it ends until a probe of the node has seen its effect: until
	// then the planner must count the node as disrupted.
	inflight map[string]plan.Action
	// exec is the executor for desired (see ControllerOptions.Executor).
	exec *execute.Executor
	halt plan.RolloutStatus
	// failed holds, by node, the action whose step failed (not a lost
	// connection: the node was down, and its probe says so) until an
	// action of that component succeeds there or it has nothing to do:
	// the rollout counts the node as unavailable meanwhile, and the
	// failures against rollout.maxFailures.
	failed map[string]plan.Action
	// observed is every probed node's last observation (nodeTrack.obs),
	// kept as the rollout planner takes it: waveLocked runs at every
	// admission, and building it there was a fifth of the pass.
	observed map[string]probes.Observed
	// reserved holds, by node, the action a wake gave a free slot to
	// (wakeWaiting): every plan counts it as in flight until the node's
	// next pass takes it or lets it go, so the node starts without
	// planning the fleet again and nobody else takes its slot.
	reserved map[string]plan.Action
	// plannedAt is when the fleet was last planned (waveLocked); wakeDue,
	// that a wake is set for wakeEvery after it (see wakeWaiting).
	plannedAt time.Time
	wakeDue   bool
	// progress counts finished actions and desired changes; a node whose
	// last pass saw the current progress has nothing new to react to.
	progress uint64
	changed  chan struct{}

	// diffCache holds, by node, the files last read for the plan's
	// content diffs (PlanWithDiffs), until the node's next probe.
	diffMu    sync.Mutex
	diffCache map[string]diffRead

	// persistMu orders writes to Store (taken before mu, never under it).
	persistMu sync.Mutex
	persist   persistence
}

// ControllerOptions configure a Controller; zero values take defaults.
type ControllerOptions struct {
	Runner inventory.Runner
	// Executor configures the executors that run actions (nil: the
	// controller only probes and plans). Each Desired's actions run on an
	// executor of a copy of it carrying that Desired's install root,
	// generation and health timeout, and the controller's Fence, so a new
	// manifest never changes an executor under a running action.
	Executor *execute.Config
	// Probe probes a node (default probes.Probe).
	Probe    execute.ProbeFunc
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
	// Store, if set, keeps what the controller decides across restarts
	// (halt, history, backoff, generation count): Restore reads it,
	// every change is written to it (persist.go).
	Store state.Store
	// Fence, if set, is asked before any action is admitted and before
	// every step (fence.go): a daemon that lost the lead starts nothing.
	Fence execute.Fence
}

type loadState struct {
	ok   bool
	err  string
	time time.Time
}

type nodeTrack struct {
	obs    probes.Observed
	plan   plan.NodePlan
	probed bool
	// probedFor is the Desired the node was last planned for; a pass
	// under another one may plan from obs (see lastProbe). req is what
	// obs was asked for: obs is valid for another Desired only where that
	// one wants no more (ObservationValid).
	probedFor *plan.Desired
	req       probes.Request
	// reach is what the last probes said of reaching the node, so that a
	// change is logged once; unreachableSince is when it went.
	reach            reachability
	unreachableSince time.Time
	seenProgress     uint64
	failures         int
	// retryAt: after a failed action, no new action starts before it
	// (the node is still probed, so its status stays current).
	retryAt       time.Time
	lastGoodProbe time.Time
	lastConverged time.Time
	history       []plan.ActionRecord
	waiting       string
	// facts of the last successful probe, kept while the node is
	// unreachable (status only).
	facts *plan.NodeFacts
	// scanned: the node was looked at for an action a former leader
	// began (foreign, still counting), takeover.go.
	scanned, scanTried bool
	foreign            *foreignAction
}

// reachability of a node, as the controller last logged it.
type reachability int

const (
	reachUnknown reachability = iota // not probed yet
	reachable
	unreachable
)

// ErrHalted is returned by RunUntilSettled when the rollout halted.
var ErrHalted = errors.New("rollout halted")

func (c *Controller) init() {
	if c.queue != nil {
		return
	}
	c.queue = NewQueue()
	c.nodes = map[string]*nodeTrack{}
	c.inflight = map[string]plan.Action{}
	c.failed = map[string]plan.Action{}
	c.observed = map[string]probes.Observed{}
	c.reserved = map[string]plan.Action{}
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
	if c.Probe == nil {
		c.Probe = probes.Probe
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
// halted rollout, ends every node's backoff and queues every node at once.
func (c *Controller) SetDesired(d *plan.Desired) {
	c.mu.Lock()
	same := c.sameGeneration(d)
	c.desired = d
	c.load = loadState{ok: true, time: c.Now()}
	if !same {
		c.gen++
		if c.halt.Halted && c.halt.Generation != d.Generation {
			c.halt = plan.RolloutStatus{}
		}
		for _, st := range c.nodes {
			st.retryAt = time.Time{} // the new manifest may be the fix
		}
		clear(c.reserved) // given for the old plans
	}
	c.exec = c.executorFor(d)
	// Forget nodes the manifest no longer has: no stale status or series,
	// and no budget held for them. (A set, not d.Node: that is a scan, and
	// a scan per node is 10^8 comparisons at 10,000 nodes.)
	wanted := make(map[string]bool, len(d.Nodes))
	for _, n := range d.Nodes {
		wanted[n.Name] = true
	}
	for name := range c.nodes {
		if !wanted[name] {
			delete(c.nodes, name)
			delete(c.inflight, name)
			delete(c.failed, name)
			delete(c.observed, name)
			delete(c.reserved, name)
		}
	}
	for _, n := range d.Nodes {
		if c.nodes[n.Name] == nil {
			c.nodes[n.Name] = c.trackFor(n.Name)
		}
	}
	c.progress++
	c.mu.Unlock()
	_ = c.saveCluster()
	for _, n := range d.Nodes {
		c.queue.Add(n.Name)
	}
	c.notify()
}

// executorFor is the configured executor as it must run d's actions. The
// hash cache is not carried over: a new manifest usually means new
// artifacts, and a hash costs one read.
func (c *Controller) executorFor(d *plan.Desired) *execute.Executor {
	if c.Executor == nil {
		return nil
	}
	cfg := *c.Executor
	cfg.InstallRoot, cfg.Generation, cfg.Fence, cfg.Desired = d.InstallRoot, d.Generation, c.Fence, d
	if d.Rollout.HealthTimeout > 0 {
		cfg.HealthTimeout = d.Rollout.HealthTimeout
	}
	if cfg.Probe == nil {
		cfg.Probe = c.Probe
	}
	return execute.New(cfg)
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
		p := c.safeReconcile(ctx, actx, node)
		for p.probeNow && ctx.Err() == nil {
			// The node's action ended: its budget is free once a probe
			// has seen its effect, so that probe runs now, in this
			// worker, not behind every node the queue holds (at 10,000
			// nodes, a sweep of them took longer than the action).
			p = c.safeReconcile(ctx, actx, node)
		}
		c.saveNode(node)
		_ = c.saveCluster()
		c.queue.Done(node)
		if ctx.Err() != nil {
			return
		}
		if !p.drop {
			c.queue.AddAfter(node, p.again)
		}
	}
}

// safeReconcile turns a panic into a failed pass, so one bad node cannot
// take the daemon down.
func (c *Controller) safeReconcile(ctx, actx context.Context, node string) (p pass) {
	defer func() {
		if r := recover(); r != nil {
			c.Log.Error("reconcile panicked", zap.String("node", node), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			p = c.fail(node)
			if d := c.current(); d != nil {
				c.wakeWaiting(d, node)
			}
		}
	}()
	return c.reconcile(ctx, actx, node)
}

// pass is what one reconcile pass over a node decided: look again after
// a while, or drop the node from the queue.
type pass struct {
	again time.Duration
	// drop: the node is not queued again (it left the manifest, or the
	// controller stops); a new manifest queues every node it names.
	drop bool
	// probeNow: the node's action ended; the worker probes it again at
	// once, without going through the queue (see worker).
	probeNow bool
}

// lookAgain is a pass after which the node is looked at again after d.
func lookAgain(d time.Duration) pass { return pass{again: max(d, 0)} }

// dropNode is a pass after which the node is not queued again.
var dropNode = pass{drop: true}

// reconcile does one pass over one node.
func (c *Controller) reconcile(ctx, actx context.Context, name string) pass {
	start := c.Now()
	c.mu.Lock()
	d, exec, progress := c.desired, c.exec, c.progress
	c.mu.Unlock()
	if d == nil {
		return dropNode
	}
	dn := d.Node(name)
	if dn == nil {
		return dropNode
	}
	var (
		a      *plan.Action
		obs    probes.Observed
		result string
		next   time.Duration
	)
	if last, ok := c.lastProbe(d, name); ok {
		// A new manifest: the node's last probe is recent and nothing
		// ran since, so what the node must do is known without a probe,
		// and its first action starts as soon as the rollout admits it.
		// The action's steps are idempotent and the next pass probes.
		if np := plan.DiffNode(d, dn, last); len(np.Actions) > 0 {
			obs = last
			a, result, next, _ = c.afterProbe(d, name, obs, nil, np, progress)
			c.notify()
			if a == nil {
				c.record(start, result)
				return lookAgain(next)
			}
		}
	}
	if a == nil {
		c.takeoverScan(ctx, d, dn)
		req := plan.RequestFor(d, dn)
		pctx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
		obs = c.Probe(pctx, c.Runner, dn.Target, req)
		cancel()
		if ctx.Err() != nil {
			// Stopping: a probe cut short says nothing about the node.
			return dropNode
		}
		c.observeProbe(obs)
		c.emit(Event{Node: name, Kind: EventProbe, Message: probeMessage(obs), Duration: obs.Duration})
		np := plan.DiffNode(d, dn, obs)

		var freed bool
		a, result, next, freed = c.afterProbe(d, name, obs, &req, np, progress)
		if freed {
			// The budget the node's last action held is free only now.
			c.wakeWaiting(d, name)
		}
		c.notify()
		switch {
		case a == nil && next < 0:
			return lookAgain(0) // the manifest changed under us: start over
		case a == nil:
			c.record(start, result)
			return lookAgain(next)
		}
	}

	if ctx.Err() != nil {
		// Stopping: no new action starts, even one admitted from the
		// node's last observation (no probe saw the stop); its slot goes
		// back.
		c.mu.Lock()
		delete(c.inflight, name)
		c.mu.Unlock()
		return dropNode
	}
	err := c.runAction(actx, d, exec, dn, *a, obs)
	failures := c.afterAction(d, name, *a, err)
	c.notify()
	if err != nil {
		c.record(start, resultFailure)
		c.Log.Info("node backs off after a failed action", zap.String("node", name), zap.Int("failures", failures))
	} else {
		c.record(start, resultSuccess)
	}
	// Look at the node again now: its action's effect is counted as in
	// flight until a probe has seen it.
	return pass{probeNow: true}
}

// Reconcile results for the Observer.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// lastProbe is the node's last observation when a pass may plan from it
// instead of probing: the manifest changed since it was taken, it found
// the node, it is no older than the longest probe interval (what the
// rollout planner knows of every other node is no newer), no action ran
// on the node since, and it saw everything d's plan for the node rests
// on (ObservationValid): an observation asked for another version's
// files knows nothing of this one's.
func (c *Controller) lastProbe(d *plan.Desired, name string) (probes.Observed, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.nodes[name]
	// A slot reserved for the node (wakeWaiting) came from a plan of
	// its last observation, and nothing ran there since: it may start
	// from that observation too.
	_, reserved := c.reserved[name]
	if st == nil || !st.probed || !st.obs.Known || st.probedFor == d && !reserved || c.desired != d {
		return probes.Observed{}, false
	}
	if _, busy := c.inflight[name]; busy {
		return probes.Observed{}, false
	}
	// The interval, its jitter and the queue's timer coalescing.
	maxAge := d.ProbeInterval + d.ProbeInterval/5 + coalesceGrain
	if age := c.Now().Sub(st.obs.ProbedAt); age < 0 || age > maxAge {
		return probes.Observed{}, false
	}
	if dn := d.Node(name); dn == nil || !plan.ObservationValid(plan.RequestFor(d, dn), st.req, st.obs) {
		return probes.Observed{}, false
	}
	return st.obs, true
}

// afterProbe records a probe (req is what it asked for; nil when the pass
// plans from the last probe) and decides what the node does next: run
// action a, or nothing and look again after next (negative: the
// manifest changed, start over). result is for the Observer; freed says
// the node's last action no longer holds budget.
func (c *Controller) afterProbe(d *plan.Desired, name string, obs probes.Observed, req *probes.Request, np plan.NodePlan, progress uint64) (a *plan.Action, result string, next time.Duration, freed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The probe has seen the effect of the node's last action.
	_, freed = c.inflight[name]
	delete(c.inflight, name)
	if c.desired != d {
		return nil, "", -1, freed
	}
	st := c.nodes[name]
	st.obs, st.plan, st.probed, st.probedFor = obs, np, true, d
	c.observed[name] = obs
	// A slot a wake gave the node is taken now or never.
	slot, reserved := c.reserved[name]
	delete(c.reserved, name)
	if req != nil {
		st.req = *req
	}
	st.seenProgress = progress
	if obs.Known {
		st.facts = plan.FactsOf(obs.OS)
	}
	c.logReachability(name, st, obs)
	if f, ok := c.failed[name]; ok && !slices.ContainsFunc(np.Actions, func(a plan.Action) bool { return a.Component == f.Component }) && obs.Known {
		delete(c.failed, name) // nothing left to do there: the failure holds nothing
	}
	switch {
	case !obs.Known:
		st.failures++
		st.waiting = ""
		// Backoff spares a node that refuses us, but a node that is
		// down comes back by itself, and a rollout may wait for it: it
		// is probed again within one probe interval whatever the
		// backoff has grown to.
		return nil, resultFailure, min(c.backoff(st.failures), c.probeInterval(d)), freed
	case len(np.Actions) == 0:
		st.failures = 0
		st.retryAt = time.Time{}
		st.lastGoodProbe = obs.ProbedAt
		st.lastConverged = c.Now()
		st.waiting = ""
		return nil, resultSuccess, c.interval(d), freed
	}
	st.lastGoodProbe = obs.ProbedAt
	if wait := st.retryAt.Sub(c.Now()); wait > 0 {
		st.waiting = ""
		return nil, resultSuccess, wait, freed
	}
	if c.persist.suspended {
		// Looked at again within the probe interval, as a converged
		// node is; a resume queues every node at once.
		st.waiting = WaitingSuspended
		return nil, resultSuccess, c.interval(d), freed
	}
	if err := c.mayAct(); err != nil {
		st.waiting = err.Error()
		return nil, resultSuccess, c.waitRetry(d), freed
	}
	if reserved && !plan.HaltActive(c.halt, d.Generation) {
		if a, ok := reservedAction(np, slot); ok {
			c.inflight[name] = a
			st.waiting = ""
			return &a, "", 0, freed
		}
	}
	a, waiting := c.admitLocked(d, name)
	st.waiting = waiting
	if a == nil {
		return nil, resultSuccess, c.waitRetry(d), freed
	}
	return a, "", 0, freed
}

// afterAction records the end of action a and returns the node's
// consecutive failures.
func (c *Controller) afterAction(d *plan.Desired, name string, a plan.Action, err error) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress++
	st := c.nodes[name]
	if st == nil {
		return 0
	}
	st.waiting = ""
	switch {
	case errors.Is(err, execute.ErrFenced):
		// Nothing ran: the node did not fail, this daemon stopped leading.
	case err == nil:
		st.failures = 0
		st.retryAt = time.Time{}
		if f, ok := c.failed[name]; ok && f.Component == a.Component {
			delete(c.failed, name)
		}
	case lostNode(err):
		// The node went away under the action: its probes back off
		// (capped at the probe interval), and once one finds it the
		// action is tried again at once.
		st.failures++
		st.retryAt = time.Time{}
	default:
		st.failures++
		st.retryAt = c.Now().Add(c.backoff(st.failures))
	}
	return st.failures
}

// lostNode reports whether an action failed because the connection to
// the node failed, not because a step did.
func lostNode(err error) bool {
	return errors.Is(err, inventory.ErrUnreachable) || errors.Is(err, inventory.ErrTimeout)
}

// countsAsFailure reports whether a failed action counts against the
// rollout (rollout.maxFailures): a step that ran and failed, or an
// artifact that cannot be read, but not a lost connection (the node is
// down, and counts as unavailable while its probes fail) nor a lock
// another drover holds.
func countsAsFailure(err error) bool {
	for _, not := range []error{execute.ErrLocked, context.Canceled, inventory.ErrAuth, inventory.ErrSudo, inventory.ErrHostKey} {
		if errors.Is(err, not) {
			return false
		}
	}
	return !lostNode(err)
}

// logReachability logs a change in whether the node answers, once:
// "node unreachable" with the probe's reason when it stops, "node
// reachable again" with how long it was gone when it comes back.
func (c *Controller) logReachability(name string, st *nodeTrack, obs probes.Observed) {
	switch {
	case obs.Known && st.reach == unreachable:
		c.Log.Info("node reachable again", zap.String("node", name), zap.Duration("unreachableFor", c.Now().Sub(st.unreachableSince).Round(time.Millisecond)))
		st.reach = reachable
	case obs.Known:
		st.reach = reachable
	case st.reach != unreachable:
		c.Log.Warn("node unreachable", zap.String("node", name), zap.String("reason", obs.Reason), zap.String("error", obs.Error))
		st.reach, st.unreachableSince = unreachable, c.Now()
	}
}

// admitLocked asks the rollout planner whether one of the node's actions
// may start now and marks it in flight. It returns why not otherwise.
func (c *Controller) admitLocked(d *plan.Desired, name string) (*plan.Action, string) {
	if _, busy := c.inflight[name]; busy {
		return nil, "an action is already running"
	}
	if why := c.scanPendingLocked(d); why != "" {
		return nil, why
	}
	if st := c.nodes[name]; st != nil && !plan.HaltActive(c.halt, d.Generation) {
		if why, held := plan.Held(d, st.plan, st.obs, c.rolloutStateLocked(d)); held {
			return nil, why // no need to plan the fleet to know
		}
	}
	if !quorumWork(d, c.nodes[name]) && c.wakeLaterLocked() {
		// The fleet was planned a moment ago: the wake set for the end of
		// that moment plans it again and gives this node a slot if the
		// rollout would.
		return nil, "waiting for the rollout's next plan (a moment)"
	}
	wave := c.waveLocked(d)
	for _, a := range wave.Actions {
		if a.Node == name {
			c.inflight[name] = a
			return &a, ""
		}
	}
	if plan.HaltActive(c.halt, d.Generation) {
		return nil, "rollout halted: " + c.halt.Reason
	}
	for _, w := range wave.Waiting {
		return nil, w
	}
	return nil, "waiting for the rollout"
}

// waveLocked is what the rollout planner would start now, from every
// node's last plan and what is in flight.
func (c *Controller) waveLocked(d *plan.Desired) plan.Wave {
	c.plannedAt = time.Now()
	p := plan.Plan{Generation: d.Generation, Nodes: make([]plan.NodePlan, 0, len(d.Nodes))}
	// Nodes backing off after a failure are offered last: the planner
	// hands a limited batch to candidates in order, and a slot given to a
	// node that will not take it for minutes would stall the others.
	now := c.Now()
	var later []plan.NodePlan
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || !st.probed {
			p.Nodes = append(p.Nodes, plan.NodePlan{Node: n.Name, Reason: "not probed yet"})
			continue
		}
		if st.retryAt.After(now) {
			later = append(later, st.plan)
			continue
		}
		p.Nodes = append(p.Nodes, st.plan)
	}
	p.Nodes = append(p.Nodes, later...)
	return plan.NextWave(d, p, c.observed, c.rolloutStateLocked(d))
}

// rolloutStateLocked is what the rollout planner needs besides the plans:
// the halt, what runs (this daemon's actions and a former leader's) and
// what failed.
func (c *Controller) rolloutStateLocked(d *plan.Desired) plan.RolloutState {
	running := make([]plan.Action, 0, len(c.inflight)+len(c.reserved))
	for _, a := range c.inflight {
		running = append(running, a)
	}
	for _, a := range c.reserved {
		running = append(running, a)
	}
	running = append(running, c.foreignLocked(d)...)
	failed := make([]plan.Action, 0, len(c.failed))
	for _, n := range d.Nodes {
		if a, ok := c.failed[n.Name]; ok {
			failed = append(failed, a)
		}
	}
	return plan.RolloutState{Halt: c.halt, InFlight: running, Failed: failed}
}

// runAction runs one admitted action and handles a failed health gate by
// the rollout's onFailure policy.
func (c *Controller) runAction(ctx context.Context, d *plan.Desired, exec *execute.Executor, dn *plan.DesiredNode, a plan.Action, obs probes.Observed) error {
	want := dn.Component(a.Component)
	have := obs.Components[a.Component]
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: EventActionStart, Action: &a, Message: describe(a)})
	start := c.Now()
	actx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
	steps, err := exec.DoSteps(actx, dn, a, want, have)
	cancel()
	dur := c.Now().Sub(start)
	c.recordAction(dn.Name, a, steps, err, dur)
	if err == nil {
		c.emit(Event{Node: dn.Name, Component: a.Component, Kind: EventActionDone, Action: &a, Message: describe(a), Duration: dur})
		return nil
	}
	// The event and the halt reason carry node and action beside the
	// cause; err itself already says "upgrade zk on m1: ", so they take
	// the cause alone and say it once.
	cause := execute.ActionCause(err)
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: EventActionFailed, Action: &a, Message: cause.Error(), Duration: dur})
	halt := plan.HaltFor(d.Generation, a, cause)
	switch {
	case errors.Is(err, execute.ErrFenced):
		// Nothing ran: this daemon stopped leading (fence.go). No failure
		// budget spent, no halt.
		return err
	case errors.Is(err, execute.ErrChecksum):
		// The artifact does not match the manifest: every node would fail
		// the same way, so stop the rollout now rather than retry node by
		// node. The check runs before anything on the node changes, so
		// there is nothing to roll back.
	case errors.Is(err, execute.ErrUnhealthy):
		// The health gate failed: the batch failed. Roll back if asked and
		// possible, then halt until the manifest changes.
		if d.Rollout.OnFailure == "rollback" && a.Kind == plan.ActionUpgrade && a.From != "" {
			halt.Reason += c.rollback(ctx, exec, dn, a, want, have)
		}
	case countsAsFailure(err):
		// A step failed (upload, unpack, a script, a hook): the node
		// holds its slot until an action there succeeds, and the rollout
		// halts once more nodes failed than rollout.maxFailures allows.
		n := c.failedStep(d, dn.Name, a)
		if n <= d.Rollout.MaxFailures {
			c.Log.Warn("action failed within the failure budget", zap.String("node", dn.Name), zap.String("component", a.Component),
				zap.Int("failedNodes", n), zap.Int("maxFailures", d.Rollout.MaxFailures), zap.Error(err))
			return err
		}
		if d.Rollout.MaxFailures > 0 {
			halt.Reason += fmt.Sprintf("; %d nodes failed, rollout.maxFailures is %d", n, d.Rollout.MaxFailures)
		}
	default:
		// The node went away under the action: it counts as unavailable
		// while its probes fail, and the action is retried once it is back.
		return err
	}
	c.mu.Lock()
	current := c.desired == d
	if current { // a halt of a manifest already replaced would hold nothing
		c.halt = halt
	}
	c.mu.Unlock()
	if !current {
		return err
	}
	c.Log.Error("rollout halted", zap.String("node", dn.Name), zap.String("component", a.Component), zap.String("reason", halt.Reason))
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: EventHalt, Message: halt.Reason})
	return err
}

// rollback switches the node back to the version a upgraded from, after
// a failed health gate, and says how that went for the halt reason.
func (c *Controller) rollback(ctx context.Context, exec *execute.Executor, dn *plan.DesiredNode, a plan.Action, want *plan.DesiredComponent, have *probes.Component) string {
	rb := plan.Action{Node: dn.Name, Component: a.Component, Kind: plan.ActionRollback, From: a.To, To: a.From, Reason: "health check failed after upgrade", Disruptive: true}
	c.emit(Event{Node: dn.Name, Component: a.Component, Kind: EventRollback, Action: &rb, Message: describe(rb)})
	start := c.Now()
	rctx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
	steps, err := exec.DoSteps(rctx, dn, rb, want, have)
	cancel()
	c.recordAction(dn.Name, rb, steps, err, c.Now().Sub(start))
	if err != nil {
		return fmt.Sprintf("; rollback to %s failed: %v", a.From, execute.ActionCause(err))
	}
	return fmt.Sprintf("; rolled back to %s", a.From)
}

// failedStep records that action a failed at a step on node and returns
// how many nodes hold a failed action now.
func (c *Controller) failedStep(d *plan.Desired, node string, a plan.Action) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.desired == d && c.nodes[node] != nil {
		c.failed[node] = a
	}
	return len(c.failed)
}

func (c *Controller) recordAction(node string, a plan.Action, steps []plan.StepRecord, err error, d time.Duration) {
	rec := plan.ActionRecord{Time: c.Now(), Action: string(a.Kind), Component: a.Component, Version: a.To, Result: "success", Duration: d, Steps: steps, Membership: a.Membership}
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

// wakeWaiting hands the slots freed by done's action (and whatever else
// is free) to the nodes the rollout planner would start now: each gets
// its action reserved and is looked at first. The fleet is planned
// (about 10 ms at 10,000 nodes) at most once every wakeEvery, by a wake
// or an admission (admitLocked): a rolling change frees slots hundreds
// of times a second, and a wake asked for sooner is folded into one at
// the end of that time, which sees every slot freed meanwhile. Quorum
// components get no reservation, only the wake: their members' health
// is planned again when the node asks.
func (c *Controller) wakeWaiting(d *plan.Desired, done string) {
	c.mu.Lock()
	var wake []string
	if c.wakeLaterLocked() {
		c.mu.Unlock()
		return
	}
	if c.desired == d && c.scanPendingLocked(d) == "" {
		for _, a := range c.waveLocked(d).Actions {
			st := c.nodes[a.Node]
			_, busy := c.inflight[a.Node]
			_, held := c.reserved[a.Node]
			if busy || held || st == nil || a.Node == done || st.waiting == "" || slices.Contains(wake, a.Node) {
				continue
			}
			if info := d.Components[a.Component]; info != nil && !info.Quorum {
				c.reserved[a.Node] = a
			}
			wake = append(wake, a.Node)
		}
	}
	c.mu.Unlock()
	for _, n := range wake {
		c.queue.AddFirst(n)
	}
}

// wakeLaterLocked reports whether the fleet was planned within
// wakeEvery; if so a wake is set for the end of it (one at a time).
func (c *Controller) wakeLaterLocked() bool {
	wait := wakeEvery - time.Since(c.plannedAt)
	if wait <= 0 {
		return false
	}
	if !c.wakeDue {
		c.wakeDue = true
		time.AfterFunc(wait, func() {
			c.mu.Lock()
			c.wakeDue = false
			d := c.desired
			c.mu.Unlock()
			if d != nil {
				c.wakeWaiting(d, "")
			}
		})
	}
	return true
}

// quorumWork says whether a node's pending actions touch a quorum
// component: those are planned when the node asks, never from a wake's
// plan a moment old.
func quorumWork(d *plan.Desired, st *nodeTrack) bool {
	if st == nil {
		return false
	}
	return slices.ContainsFunc(st.plan.Actions, func(a plan.Action) bool {
		info := d.Components[a.Component]
		return info != nil && info.Quorum
	})
}

// wakeEvery bounds how often wakeWaiting plans the fleet.
const wakeEvery = 20 * time.Millisecond

// reservedAction is the action of np that a wake reserved slot was for,
// as planned now; false when the plan no longer has it.
func reservedAction(np plan.NodePlan, slot plan.Action) (plan.Action, bool) {
	for _, a := range np.Actions {
		if a.Component == slot.Component && a.Kind == slot.Kind && a.To == slot.To && a.Disruptive == slot.Disruptive && a.Membership == slot.Membership {
			return a, true
		}
	}
	return plan.Action{}, false
}

// current is the Desired in force.
func (c *Controller) current() *plan.Desired {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.desired
}

// fail counts a failed pass over node and backs it off.
func (c *Controller) fail(node string) pass {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, node)
	delete(c.reserved, node)
	st := c.nodes[node]
	if st == nil {
		return dropNode
	}
	st.failures++
	st.waiting = ""
	d := c.backoff(st.failures)
	st.retryAt = c.Now().Add(d)
	return lookAgain(d)
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

// waitRetry is how soon a node the rollout holds back is looked at again:
// WaitRetry, but no more than waitPassesPerSecond such passes a second
// over the fleet (each probes the node and plans the whole fleet: at
// 10,000 nodes, 9,000 of them every 5 s kept the daemon's one core busy
// and a rolling change crawled), and never less often than a probe
// interval. A node a freed slot admits is woken at once (wakeWaiting);
// the retry is for what only probes show, such as a quorum member
// healthy again.
func (c *Controller) waitRetry(d *plan.Desired) time.Duration {
	spread := time.Duration(len(d.Nodes)) * time.Second / waitPassesPerSecond
	return max(c.WaitRetry, min(spread, c.probeInterval(d)))
}

// waitPassesPerSecond bounds the passes over held-back nodes (waitRetry).
const waitPassesPerSecond = 200

// probeInterval is the manifest's probe interval (30 s when unset).
func (c *Controller) probeInterval(d *plan.Desired) time.Duration {
	if d.ProbeInterval <= 0 {
		return 30 * time.Second
	}
	return d.ProbeInterval
}

// interval is the probe interval with ±20% jitter, so a thousand nodes do
// not all connect at once.
func (c *Controller) interval(d *plan.Desired) time.Duration {
	base := c.probeInterval(d)
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

func describe(a plan.Action) string {
	switch {
	case a.From != "" && a.To != "" && a.From != a.To:
		return fmt.Sprintf("%s %s %s -> %s", a.Kind, a.Component, a.From, a.To) + a.MembershipNote()
	case a.To != "":
		return fmt.Sprintf("%s %s %s", a.Kind, a.Component, a.To) + a.MembershipNote()
	default:
		return fmt.Sprintf("%s %s", a.Kind, a.Component) + a.MembershipNote()
	}
}

func probeMessage(o probes.Observed) string {
	if o.Known {
		return "probed"
	}
	return "unknown: " + o.Reason + ": " + o.Error
}

// What the operator's commands (drover suspend, resume, retry,
// reconcile) meet in a running controller.
var (
	// ErrNoManifest: no manifest is in force yet, so there is nothing
	// to retry or probe.
	ErrNoManifest = errors.New("no manifest is in force yet")
	// ErrUnknownNode: the manifest in force has no such node.
	ErrUnknownNode = errors.New("no such node in the manifest in force")
	// ErrNothingToRetry: no halt holds and no node backs off after a
	// failed action.
	ErrNothingToRetry = errors.New("nothing to retry: the rollout is not halted and no node backs off after a failed action")
)

// WaitingSuspended is why a node's actions wait while the operator has
// the controller suspended (SetSuspended).
const WaitingSuspended = "suspended by the operator (drover resume lifts it)"

// Retried is what Retry lifted.
type Retried struct {
	// Halt is the reason of the halt lifted, "" when none held.
	Halt string `json:"halt,omitempty"`
	// Nodes are the nodes whose failed action or backoff was forgotten.
	Nodes []string `json:"nodes,omitempty"`
}

// Retry is the operator's word that the cause of a failure is fixed: for
// the manifest in force it lifts the halt (which would otherwise hold
// until the manifest changes), forgets the failed actions that hold
// rollout slots (RolloutState.Failed) and every node's backoff after a
// failed action, and queues every node. Nothing else changes: the next
// passes probe and plan as always, so a cause that is not fixed fails and
// halts again. ErrNothingToRetry when nothing held.
func (c *Controller) Retry() (Retried, error) {
	c.mu.Lock()
	d := c.desired
	if d == nil {
		c.mu.Unlock()
		return Retried{}, ErrNoManifest
	}
	var r Retried
	if plan.HaltActive(c.halt, d.Generation) {
		r.Halt = c.halt.Reason
	}
	c.halt = plan.RolloutStatus{}
	now := c.Now()
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil {
			continue
		}
		_, failed := c.failed[n.Name]
		if !failed && !st.retryAt.After(now) {
			continue
		}
		delete(c.failed, n.Name)
		st.retryAt, st.failures = time.Time{}, 0
		r.Nodes = append(r.Nodes, n.Name)
	}
	if r.Halt == "" && len(r.Nodes) == 0 {
		c.mu.Unlock()
		return r, ErrNothingToRetry
	}
	c.progress++
	c.mu.Unlock()
	c.Log.Info("retry by the operator", zap.String("haltLifted", r.Halt), zap.Strings("nodes", r.Nodes))
	for _, n := range r.Nodes {
		c.saveNode(n)
	}
	err := c.saveCluster()
	for _, n := range d.Nodes {
		c.queue.Add(n.Name)
	}
	c.notify()
	return r, err
}

// ReconcileNow queues the named nodes (every node when none is named) for
// a pass at once, instead of at the end of their probe interval or
// backoff, and returns them and the controller's time: a probe of a node
// at or after it was made for this request. A node backing off after a failed
// action is probed, but starts no action before its backoff ends (Retry
// ends that). ErrUnknownNode names the first node the manifest lacks;
// then nothing is queued.
func (c *Controller) ReconcileNow(nodes []string) ([]string, time.Time, error) {
	c.mu.Lock()
	d := c.desired
	now := c.Now()
	c.mu.Unlock()
	if d == nil {
		return nil, now, ErrNoManifest
	}
	if len(nodes) == 0 {
		for _, n := range d.Nodes {
			nodes = append(nodes, n.Name)
		}
	}
	for _, n := range nodes {
		if d.Node(n) == nil {
			return nil, now, fmt.Errorf("%w: %q", ErrUnknownNode, n)
		}
	}
	for _, n := range nodes {
		c.queue.Add(n)
	}
	return nodes, now, nil
}

// diffRead is one node's file read for the plan's content diffs, kept
// until the node is probed again (under Controller.diffMu).
type diffRead struct {
	probedAt time.Time
	paths    string
	files    map[string][]byte
}

// diffReadTimeout bounds one node's read for the plan's diffs.
const diffReadTimeout = 10 * time.Second

// PlanWithDiffs is CurrentPlan with content diffs (plan.AttachDiffs), for the
// console: the node's copy of each file the plan would change is read in
// one extra session per node, only for nodes whose plan changes a file
// that is there, never for sensitive files, and at most once per probe
// of the node (the bytes are kept until the next one). A read that fails
// leaves that node's diffs saying so.
func (c *Controller) PlanWithDiffs(ctx context.Context) plan.Plan {
	c.mu.Lock()
	d := c.desired
	if d == nil {
		c.mu.Unlock()
		return plan.Plan{}
	}
	p := plan.Plan{Generation: d.Generation}
	obs := make(map[string]probes.Observed, len(d.Nodes))
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || !st.probed {
			p.Nodes = append(p.Nodes, plan.NodePlan{Node: n.Name, Reason: "not probed yet"})
			continue
		}
		p.Nodes = append(p.Nodes, st.plan)
		obs[n.Name] = st.obs
	}
	c.mu.Unlock()
	unitDir := ""
	if c.Executor != nil {
		unitDir = c.Executor.UnitDir
	}
	req := plan.ContentRequest(d, p, obs, unitDir)
	current := plan.CurrentFiles{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for node, paths := range req {
		key := strings.Join(paths, "\x00")
		at := obs[node].ProbedAt
		c.diffMu.Lock()
		hit, ok := c.diffCache[node]
		c.diffMu.Unlock()
		if ok && hit.probedAt.Equal(at) && hit.paths == key {
			current[node] = hit.files
			continue
		}
		dn := d.Node(node)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, diffReadTimeout)
			files, err := ReadNodeFiles(rctx, c.Runner, dn.Target, paths)
			cancel()
			if err != nil {
				c.Log.Debug("plan diffs: read failed", zap.String("node", node), zap.Error(err))
				return
			}
			mu.Lock()
			current[node] = files
			mu.Unlock()
			c.diffMu.Lock()
			if c.diffCache == nil {
				c.diffCache = map[string]diffRead{}
			}
			c.diffCache[node] = diffRead{probedAt: at, paths: key, files: files}
			c.diffMu.Unlock()
		}()
	}
	wg.Wait()
	c.diffMu.Lock()
	for node := range c.diffCache {
		if _, ok := req[node]; !ok {
			delete(c.diffCache, node) // nothing differs there any more
		}
	}
	c.diffMu.Unlock()
	plan.AttachDiffs(d, &p, obs, current, unitDir)
	return p
}
