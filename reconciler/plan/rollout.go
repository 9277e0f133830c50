package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/drover-project/drover/probes"
)

// RolloutState is what the rollout planner needs besides the plan and the
// observations: the halt, and the actions running now (so the daemon can
// ask for the next wave while workers are still busy).
type RolloutState struct {
	// Halt stops the rollout while Halt.Generation is the desired one.
	Halt RolloutStatus
	// InFlight are the actions running now. Their nodes get nothing more,
	// a disruptive one makes its node unavailable for its component, and
	// each counts as pending work for ordering.
	InFlight []Action
	// Failed are actions that failed at a step and have not succeeded
	// since: each keeps its node unavailable for its component (a slot of
	// maxUnavailable, a quorum's one change at a time) until it does.
	Failed []Action
}

// Wave is the set of actions that may start now, and why the others wait.
type Wave struct {
	Actions []Action `json:"actions"`
	// Waiting are short sentences saying why the other actions wait.
	Waiting    []string `json:"waiting,omitempty"`
	Halted     bool     `json:"halted,omitempty"`
	HaltReason string   `json:"haltReason,omitempty"`
}

// HaltActive reports whether a halt still holds: it lasts until the
// manifest changes, that is until the generation differs.
func HaltActive(h RolloutStatus, generation string) bool {
	return h.Halted && h.Generation == generation
}

// HaltFor is the rollout status after action a failed with cause under
// the given generation.
func HaltFor(generation string, a Action, cause error) RolloutStatus {
	return RolloutStatus{
		Halted:     true,
		Reason:     fmt.Sprintf("%s %s %s on %s failed: %v", a.Kind, a.Component, actionVersions(a), a.Node, cause),
		Component:  a.Component,
		Node:       a.Node,
		Generation: generation,
	}
}

// NextWave chooses the actions of the plan that may start now. It is
// pure; call it again whenever an action ends or a probe lands.
//
// Rules, in order:
//   - a halted rollout (for this generation) and a paused cluster release
//     nothing; actions on paused nodes are held, and neither block nor
//     count as pending for anybody else; unknown nodes have no actions;
//   - with Desired.OnlyComponents set, the other components' actions are
//     held: never released, but counted as pending work, so what depends
//     on them and removals still wait for them;
//   - a node runs one action at a time;
//   - removals wait until no other action is pending or in flight on any
//     node, so a node whose role changes gets its new components working
//     before the old ones go, and nothing irreversible happens while a
//     change may still fail and halt; they run in reverse dependency order;
//   - a component starts only when every component it transitively
//     dependsOn has nothing pending or in flight and is Healthy on each of
//     its members that is known and not paused;
//   - within a component, nodes go by rollout.roleOrder: a node waits
//     while nodes of an earlier role have work for that component (roles
//     not listed come last);
//   - batch size is min(cluster maxUnavailable, component maxUnavailable),
//     each resolved against the component's member count. A disruptive
//     action may start only while fewer members than that are unavailable:
//     Degraded, Progressing, in a disruptive action, or unknown (an
//     unreachable node may well be down, so it uses up budget). A
//     disruptive action on a member that is already unavailable costs
//     nothing more, so a broken node can always be repaired. Non-disruptive
//     actions (first installs) and removals are only bounded by the batch
//     size in flight;
//   - a quorum component changes one member at a time, never while
//     another member is not Healthy (unknown and Missing count) and never
//     while another action of it runs, whatever its size; the member its
//     leader check finds leading changes last. Members that
//     are down anyway (first installs, repairs of a stopped unit) are the
//     exception: they go together, since they cannot lower the number of
//     live members and an ensemble needs a majority up to become healthy;
//   - a quorum component changes only from plans of the current
//     generation for every member: a member still carrying the previous
//     generation's plan (empty, say) hides its own change, so the leader
//     could look like the only candidate and go first;
//   - a quorum component's group grows and shrinks one member at a time
//     (membershipChange): joins before its other changes, leaves with
//     the removals, each only while the healthy members keep a majority;
//   - a node whose action failed at a step (st.Failed) is unavailable for
//     that component until the action succeeds: it keeps its slot of
//     maxUnavailable, and a quorum component changes nothing else
//     meanwhile (only the failed member is retried).
func NextWave(d *Desired, plan Plan, obs map[string]probes.Observed, st RolloutState) Wave {
	var w Wave
	if HaltActive(st.Halt, d.Generation) {
		w.Halted, w.HaltReason = true, st.Halt.Reason
		w.Waiting = append(w.Waiting, "rollout halted: "+st.Halt.Reason+"; change the manifest to resume")
		return w
	}
	if d.Paused || plan.Paused {
		if !plan.Empty() {
			w.Waiting = append(w.Waiting, "cluster paused: nothing is changed")
		}
		return w
	}
	r := newRollout(d, plan, obs, st, &w)
	for _, comp := range d.Order {
		r.component(comp, false)
	}
	if n := r.work(false); n > 0 {
		if r.work(true) > 0 {
			r.wait("removals wait for %s to finish", plural(n, "other action"))
		}
	} else {
		for _, comp := range r.removalOrder() {
			r.component(comp, true)
		}
	}
	w.Waiting = append(w.Waiting, r.notes...)
	return w
}

// rollout is the working state of one NextWave call.
type rollout struct {
	d        *Desired
	obs      map[string]probes.Observed
	wave     *Wave
	pending  map[string][]Action // by component: releasable, not in flight
	held     map[string][]Action // by component: not in Desired.OnlyComponents
	inFlight map[string][]Action // by component
	busy     map[string]bool     // nodes running or just given an action
	deps     map[string][]string // transitive dependsOn
	notes    []string            // about paused and unknown nodes
	// stale are the known nodes whose plan is of another generation.
	stale map[string]bool
	// failed are, by component, the nodes holding a failed action.
	failed map[string]map[string]bool
}

func newRollout(d *Desired, plan Plan, obs map[string]probes.Observed, st RolloutState, w *Wave) *rollout {
	r := &rollout{
		d: d, obs: obs, wave: w,
		pending:  map[string][]Action{},
		held:     map[string][]Action{},
		inFlight: map[string][]Action{},
		busy:     map[string]bool{},
		deps:     map[string][]string{},
		stale:    map[string]bool{},
		failed:   map[string]map[string]bool{},
	}
	for _, a := range st.Failed {
		if r.failed[a.Component] == nil {
			r.failed[a.Component] = map[string]bool{}
		}
		r.failed[a.Component][a.Node] = true
	}
	running := map[[2]string]bool{}
	for _, a := range st.InFlight {
		r.inFlight[a.Component] = append(r.inFlight[a.Component], a)
		r.busy[a.Node] = true
		running[[2]string{a.Node, a.Component}] = true
	}
	// Sized up front: at 10,000 nodes growing these lists by appends
	// was most of what a pass allocated.
	sizes := map[string]int{}
	for _, np := range plan.Nodes {
		for _, a := range np.Actions {
			sizes[a.Component]++
		}
	}
	for comp, n := range sizes {
		r.pending[comp] = make([]Action, 0, n)
	}
	for _, np := range plan.Nodes {
		if np.Known && np.Generation != d.Generation {
			r.stale[np.Node] = true
		}
		switch {
		case !np.Known:
			r.notes = append(r.notes, fmt.Sprintf("%s: not planned: %s", np.Node, np.Reason))
			continue
		case np.Paused:
			if len(np.Actions) > 0 {
				r.notes = append(r.notes, fmt.Sprintf("%s: paused, %s held", np.Node, plural(len(np.Actions), "action")))
			}
			continue
		}
		for _, a := range np.Actions {
			switch {
			case running[[2]string{a.Node, a.Component}]:
			case d.OnlyComponents != nil && !slices.Contains(d.OnlyComponents, a.Component):
				r.held[a.Component] = append(r.held[a.Component], a)
			default:
				r.pending[a.Component] = append(r.pending[a.Component], a)
			}
		}
	}
	for _, comp := range slices.Sorted(maps.Keys(r.held)) {
		r.notes = append(r.notes, fmt.Sprintf("%s: %s held: not a targeted component", comp, plural(len(r.held[comp]), "action")))
	}
	for name := range d.Components {
		r.deps[name] = closure(d, name)
	}
	return r
}

func (r *rollout) wait(format string, args ...any) {
	r.wave.Waiting = append(r.wave.Waiting, fmt.Sprintf(format, args...))
}

// work counts pending and in-flight actions that are removals (or not).
func (r *rollout) work(removals bool) int {
	n := 0
	for _, m := range []map[string][]Action{r.pending, r.inFlight, r.held} {
		for _, as := range m {
			for _, a := range as {
				if (a.Kind == ActionRemove) == removals {
					n++
				}
			}
		}
	}
	return n
}

// compWork is the pending and in-flight actions of one component that
// are removals (or not).
func (r *rollout) compWork(comp string, removals bool) (pending, inFlight []Action) {
	keep := func(as []Action) []Action {
		n := 0
		for _, a := range as {
			if (a.Kind == ActionRemove) == removals {
				n++
			}
		}
		if n == len(as) {
			return as // all of them, as is usual: no copy (the caller only reads)
		}
		out := make([]Action, 0, n)
		for _, a := range as {
			if (a.Kind == ActionRemove) == removals {
				out = append(out, a)
			}
		}
		return out
	}
	return keep(r.pending[comp]), keep(r.inFlight[comp])
}

// removalOrder is reverse dependency order: components unknown to the
// manifest first (by name), then known ones, last in Order first.
func (r *rollout) removalOrder() []string {
	var unknown []string
	for comp := range r.pending {
		if _, ok := r.d.Components[comp]; !ok {
			unknown = append(unknown, comp)
		}
	}
	slices.Sort(unknown)
	known := slices.Clone(r.d.Order)
	slices.Reverse(known)
	return append(unknown, known...)
}

// component releases what it can of one component's actions.
func (r *rollout) component(comp string, removals bool) {
	cands, running := r.compWork(comp, removals)
	if len(cands) == 0 {
		return
	}
	if !r.gate(comp, removals, len(cands)) {
		return
	}
	cands = r.byRole(comp, cands, running)
	info := r.d.Components[comp]
	if info != nil && info.Quorum && !removals {
		if stale := r.staleMembers(comp); len(stale) > 0 {
			r.wait("%s: quorum: %s until %s %s planned for this manifest", comp, waiting(len(cands), "action"), strings.Join(stale, ", "), map[bool]string{true: "is", false: "are"}[len(stale) == 1])
			return
		}
		r.quorum(comp, cands, running)
		return
	}
	if info != nil && info.Quorum && info.Present {
		// Removals of a group that stays are leaves: one at a time.
		if leaves, _ := r.splitMembership(cands); len(leaves) > 0 {
			r.membershipChange(comp, leaves, running)
			return
		}
	}
	r.batch(comp, cands, running, removals)
}

// staleMembers are the members of comp whose plan is of another
// generation than the desired one.
func (r *rollout) staleMembers(comp string) []string {
	var out []string
	for _, m := range r.d.Components[comp].Members {
		if r.stale[m] {
			out = append(out, m)
		}
	}
	return out
}

// gate checks the ordering between components: dependencies first for
// changes, dependents first for removals.
func (r *rollout) gate(comp string, removals bool, n int) bool {
	if removals {
		for other, deps := range r.sortedDeps() {
			if slices.Contains(deps, comp) && r.hasWork(other, true) {
				r.wait("%s: %s for %s, which depends on it, to be removed", comp, waiting(n, "removal"), other)
				return false
			}
		}
		return true
	}
	for _, dep := range r.deps[comp] {
		if r.hasWork(dep, false) {
			r.wait("%s: %s for %s to finish", comp, waiting(n, "action"), dep)
			return false
		}
		if node, why := r.unhealthyMember(dep); node != "" {
			r.wait("%s: %s for %s to be healthy on %s (%s)", comp, waiting(n, "action"), dep, node, why)
			return false
		}
	}
	return true
}

// sortedDeps iterates the transitive dependencies by component in Order,
// so messages do not depend on map order.
func (r *rollout) sortedDeps() func(func(string, []string) bool) {
	return func(yield func(string, []string) bool) {
		for _, name := range r.d.Order {
			if !yield(name, r.deps[name]) {
				return
			}
		}
	}
}

// hasWork reports whether comp has pending, in-flight or held work of
// the kind: held work is not started, but what waits for comp waits for it.
func (r *rollout) hasWork(comp string, removals bool) bool {
	p, f := r.compWork(comp, removals)
	held := 0
	for _, a := range r.held[comp] {
		if (a.Kind == ActionRemove) == removals {
			held++
		}
	}
	return len(p)+len(f)+held > 0
}

// unhealthyMember is the first known, unpaused member on which comp is
// not Healthy, with why; "" when there is none.
func (r *rollout) unhealthyMember(comp string) (string, string) {
	for _, m := range r.d.Components[comp].Members {
		h, why, known := r.health(m, comp)
		if !known || r.d.Paused || r.d.Node(m).Paused {
			continue
		}
		if h != Healthy {
			return m, why
		}
	}
	return "", ""
}

// health is comp's health on a member node; known is false when the node
// was not probed successfully.
func (r *rollout) health(node, comp string) (Health, string, bool) {
	o, ok := r.obs[node]
	if !ok || !o.Known {
		return HealthUnknown, unknownReason(o, ok), false
	}
	dn := r.d.Node(node)
	if dn == nil || dn.Component(comp) == nil {
		return HealthUnknown, "not a member", false
	}
	h, why := ComponentHealth(dn.Component(comp), o.Components[comp])
	return h, why, true
}

// byRole keeps the candidates of the earliest role that still has work
// for the component (pending or in flight) and says why the rest wait.
func (r *rollout) byRole(comp string, cands, running []Action) []Action {
	info := r.d.Components[comp]
	first := -1
	for _, as := range [][]Action{cands, running} {
		for _, a := range as {
			if k := r.rank(info, a.Node); first < 0 || k < first {
				first = k
			}
		}
	}
	later := 0
	for _, a := range cands {
		if r.rank(info, a.Node) != first {
			later++
		}
	}
	if later == 0 {
		return cands // one role (as without a roleOrder): no copy
	}
	now := make([]Action, 0, len(cands)-later)
	for _, a := range cands {
		if r.rank(info, a.Node) == first {
			now = append(now, a)
		}
	}
	r.wait("%s: %s on later roles %s for %s nodes", comp, plural(later, "action"), verb(later, "wait"), r.roleName(first))
	return now
}

// rank is the node's place in roleOrder for the component: the earliest
// of its roles that place the component (any role, when the component
// is placed by selector or everywhere); roles not listed come last.
func (r *rollout) rank(info *DesiredComponentInfo, node string) int {
	order := r.d.Rollout.RoleOrder
	best := len(order)
	dn := r.d.Node(node)
	if dn == nil {
		return best
	}
	for _, role := range dn.Roles {
		if info != nil && len(info.Roles) > 0 && !slices.Contains(info.Roles, role) {
			continue
		}
		if i := slices.Index(order, role); i >= 0 && i < best {
			best = i
		}
	}
	return best
}

func (r *rollout) roleName(rank int) string {
	if rank < len(r.d.Rollout.RoleOrder) {
		return r.d.Rollout.RoleOrder[rank]
	}
	return "unordered-role"
}

// batchSize is the tighter of the cluster's and the component's
// maxUnavailable, resolved against a group of n nodes.
func (r *rollout) batchSize(comp string, n int) int { return batchSize(r.d, comp, n) }

// batchSize is the component's batch of n members: min(cluster
// maxUnavailable, component maxUnavailable), each resolved against n.
func batchSize(d *Desired, comp string, n int) int {
	size := d.Rollout.MaxUnavailable.Of(n)
	if info := d.Components[comp]; info != nil && info.MaxUnavailable != nil {
		size = min(size, info.MaxUnavailable.Of(n))
	}
	return size
}

// unavailable is the set of members that do not serve comp now: unknown,
// Degraded or Progressing, or in a disruptive action. Missing members
// never served, so they take nothing away.
func (r *rollout) unavailable(comp string, running []Action) map[string]bool {
	out := map[string]bool{}
	for _, m := range r.d.Components[comp].Members {
		h, _, known := r.health(m, comp)
		if !known || h == Degraded || h == Progressing {
			out[m] = true
		}
	}
	for _, a := range running {
		if a.Disruptive {
			out[a.Node] = true
		}
	}
	for n := range r.failed[comp] {
		out[n] = true
	}
	return out
}

func (r *rollout) release(a Action) {
	r.wave.Actions = append(r.wave.Actions, a)
	r.busy[a.Node] = true
}

// batch releases actions within the component's maxUnavailable.
func (r *rollout) batch(comp string, cands, running []Action, removals bool) {
	info := r.d.Components[comp]
	group := 0
	var down map[string]bool
	if info != nil {
		group = len(info.Members)
		if !removals {
			down = r.unavailable(comp, running)
		}
	}
	if removals {
		// Removals leave nodes that are no longer members: bound them by
		// everyone who has or gets the component.
		group += len(cands) + len(running)
	}
	size := r.batchSize(comp, group)
	quiet := 0 // non-disruptive actions in flight, and failed ones
	for _, a := range running {
		if removals || !a.Disruptive {
			quiet++
		}
	}
	var failed map[string]bool
	if !removals {
		failed = r.failed[comp]
		for n := range failed {
			if !slices.ContainsFunc(running, func(a Action) bool { return a.Node == n }) {
				quiet++
			}
		}
	}
	blocked, busy := 0, 0
	for _, a := range cands {
		switch {
		case r.busy[a.Node]:
			busy++
		case failed[a.Node]:
			r.release(a) // it holds its slot already
		case !removals && a.Disruptive && down[a.Node]:
			r.release(a) // already unavailable: repairing it costs nothing
		case !removals && a.Disruptive && len(down) < size:
			down[a.Node] = true
			r.release(a)
		case (removals || !a.Disruptive) && quiet < size:
			quiet++
			r.release(a)
		default:
			blocked++
		}
	}
	if blocked > 0 {
		what := fmt.Sprintf("maxUnavailable %d", size)
		if !removals && len(down) > 0 {
			what += fmt.Sprintf(" (unavailable: %s)", strings.Join(slices.Sorted(maps.Keys(down)), ", "))
		}
		r.wait("%s: %s for %s", comp, waiting(blocked, "action"), what)
	}
	if busy > 0 {
		r.wait("%s: %s for their nodes to finish another action", comp, waiting(busy, "action"))
	}
}

// quorum releases the actions of a quorum component. Members that are
// down (not running: the action is not disruptive) are installed or
// repaired together: they cannot lower the number of live members, and an
// ensemble being built or recovering from a double failure needs several
// at once to regain its majority. A disruptive action goes one at a time,
// only while nothing else of the component runs and every other member
// is Healthy.
func (r *rollout) quorum(comp string, cands, running []Action) {
	// Only a disruptive action in flight holds the down members back: the
	// controller admits actions one node at a time, so the install of
	// the first member of a new ensemble is in flight while the others
	// are asked for, and it cannot turn healthy without them.
	for _, a := range running {
		if a.Disruptive || a.Membership != "" {
			r.wait("%s: quorum: %s while %s changes", comp, waiting(len(cands), "action"), a.Node)
			return
		}
	}
	if unprobed := r.unprobed(comp); len(unprobed) > 0 && slices.ContainsFunc(cands, r.fresh) {
		// Is the group there to join, or being formed? Not known yet.
		r.wait("%s: quorum: %s until %s %s probed", comp, waiting(len(cands), "action"), strings.Join(unprobed, ", "), map[bool]string{true: "is", false: "are"}[len(unprobed) == 1])
		return
	}
	if failed := r.failed[comp]; len(failed) > 0 {
		// A member whose action failed keeps the one change at a time:
		// only it is tried again, until it succeeds.
		held := 0
		for _, a := range cands {
			if failed[a.Node] && !r.busy[a.Node] {
				r.release(a)
			} else {
				held++
			}
		}
		if held > 0 {
			r.wait("%s: quorum: %s while the failed action on %s is retried", comp, waiting(held, "action"), strings.Join(slices.Sorted(maps.Keys(failed)), ", "))
		}
		return
	}
	// Joins go before the group's other changes (a larger group rides
	// out a rolling change better), after the members that are down.
	// A join that must wait for the majority lets the group's repairs
	// and other changes go first (they may be what it waits for).
	if joins, rest := r.splitMembership(cands); len(joins) > 0 {
		downFirst := slices.ContainsFunc(rest, func(a Action) bool { return !a.Disruptive })
		first, free := r.firstFree(joins)
		_, why := r.mayChange(comp, first)
		switch {
		case downFirst:
			r.wait("%s: quorum: %s until members that are down are up", comp, waiting(len(joins), "join"))
		case len(running) > 0 || !free || why == "":
			r.membershipChange(comp, joins, running)
			if len(rest) > 0 {
				r.wait("%s: quorum: %s until the group has grown", comp, waiting(len(rest), "action"))
			}
			return
		default:
			r.wait("%s: quorum: %s", comp, why)
		}
		if len(rest) == 0 {
			return
		}
		cands = rest
	}
	busy, down := 0, 0
	for _, a := range cands {
		if a.Disruptive {
			continue
		}
		down++
		if r.busy[a.Node] {
			busy++
			continue
		}
		r.release(a)
	}
	if down > 0 {
		if busy > 0 {
			r.wait("%s: %s for their nodes to finish another action", comp, waiting(busy, "action"))
		}
		if len(cands) > down {
			r.wait("%s: quorum: %s until members that are down are up", comp, waiting(len(cands)-down, "action"))
		}
		return
	}
	if len(running) > 0 {
		r.wait("%s: quorum: %s while %s changes", comp, waiting(len(cands), "action"), running[0].Node)
		return
	}
	lead := r.leader(comp, cands)
	var blocker, why string
	for _, a := range leaderLast(cands, lead) {
		if r.busy[a.Node] {
			continue
		}
		node, reason := r.otherUnhealthy(comp, a.Node)
		if node == "" {
			r.release(a)
			if len(cands) > 1 {
				r.wait("%s: quorum: %s, one member at a time", comp, waiting(len(cands)-1, "action"))
			}
			if lead != "" && lead != a.Node {
				r.wait("%s: quorum: %s leads, so it changes last", comp, lead)
			}
			return
		}
		if blocker == "" {
			blocker, why = node, reason
		}
	}
	if blocker != "" {
		r.wait("%s: quorum: %s for %s to be healthy (%s)", comp, waiting(len(cands), "action"), blocker, why)
		return
	}
	r.wait("%s: %s for their nodes to finish another action", comp, waiting(len(cands), "action"))
}

// leaderLast puts the candidate on the node lead after the others:
// changing the leader costs an election, and changing it last costs one,
// where a member changed after it could be the next leader and cost
// another.
func leaderLast(cands []Action, lead string) []Action {
	if lead == "" {
		return cands
	}
	out := make([]Action, 0, len(cands))
	var last []Action
	for _, a := range cands {
		if a.Node == lead {
			last = append(last, a)
		} else {
			out = append(out, a)
		}
	}
	return append(out, last...)
}

// leader is the node among the candidates whose member of comp leads, or
// "" when none is known to. Two claiming to lead (a stale probe during an
// election) make neither the leader: the order then does not matter.
func (r *rollout) leader(comp string, cands []Action) string {
	found := ""
	for _, a := range cands {
		o, ok := r.obs[a.Node]
		if !ok || !o.Known {
			continue
		}
		if c := o.Components[comp]; c != nil && c.Leader.OK {
			if found != "" {
				return ""
			}
			found = a.Node
		}
	}
	return found
}

// otherUnhealthy is the first member other than node that is not known
// to be Healthy (unknown counts: it may be down), with why.
func (r *rollout) otherUnhealthy(comp, node string) (string, string) {
	g := groupOf(r.d, r.obs, comp)
	joining := 0
	for _, m := range r.d.Components[comp].Members {
		if m == node {
			continue
		}
		h, why, known := r.health(m, comp)
		if known && h == Missing && g.healthyBut(m) > 0 {
			joining++
			continue // it has not joined the group yet: not one of its members
		}
		if !known {
			return m, "unknown: " + why
		}
		if h != Healthy {
			if why == "" {
				why = string(h)
			}
			return m, why
		}
	}
	// With members not joined yet the group is smaller than the
	// manifest's: the others must still be a majority of it.
	if healthy := g.healthyBut(node); joining > 0 && healthy < majority(len(g.present)) {
		return node, fmt.Sprintf("the other %d healthy members are no majority of the %d in the group", healthy, len(g.present))
	}
	return "", ""
}

// closure is every component comp depends on, directly or not, in Order.
func closure(d *Desired, comp string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		info := d.Components[name]
		if info == nil {
			return
		}
		for _, dep := range info.DependsOn {
			if !seen[dep] {
				seen[dep] = true
				visit(dep)
			}
		}
	}
	visit(comp)
	var out []string
	for _, name := range d.Order {
		if seen[name] {
			out = append(out, name)
		}
	}
	return out
}

// waiting is "1 action waits" or "3 actions wait".
func waiting(n int, noun string) string { return plural(n, noun) + " " + verb(n, "wait") }

// verb agrees a present-tense verb with a count.
func verb(n int, v string) string {
	if n == 1 {
		return v + "s"
	}
	return v
}
