package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// Changes of a quorum group's membership (Action.Membership).
const (
	// MemberJoin: an install on a node that joins a group that has
	// healthy members: preJoin on a member that stays, then the install
	// rendered with .Component.Joining.
	MemberJoin = "join"
	// MemberLeave: a remove from a node that leaves a group that stays:
	// preStop and the stop, postLeave on a member that stays, then the
	// rest of the remove.
	MemberLeave = "leave"
)

// group is a quorum component's group as every node's observation shows
// it: the present members (nodes with its receipt, whatever the
// manifest says now, and desired members not known, which may), in
// manifest order, and which of them are healthy.
type group struct {
	present []string
	healthy map[string]bool
	// member says whether the manifest places the component on the node.
	member map[string]bool
}

// groupOf reads comp's group from the observations. A desired member that
// is not known counts as present and not healthy: it may well be a member
// that is down.
func groupOf(d *Desired, obs map[string]probes.Observed, comp string) group {
	g := group{healthy: map[string]bool{}, member: map[string]bool{}}
	if info := d.Components[comp]; info != nil {
		for _, m := range info.Members {
			g.member[m] = true
		}
	}
	for _, n := range d.Nodes {
		o, ok := obs[n.Name]
		if !ok || !o.Known {
			if g.member[n.Name] {
				g.present = append(g.present, n.Name)
			}
			continue
		}
		oc := o.Components[comp]
		if !holds(oc) {
			continue
		}
		g.present = append(g.present, n.Name)
		if want := n.Component(comp); want != nil {
			h, _ := ComponentHealth(want, oc)
			g.healthy[n.Name] = h == Healthy
		} else {
			g.healthy[n.Name] = unitRunning(oc) && unwantedHealth(oc) == Healthy
		}
	}
	return g
}

// holds reports whether the node has the component installed: a
// receipt, which an install writes last. A node a join was cut off on
// (its files there, no receipt) joins again, preJoin and all: preJoin is
// idempotent, and the install must be rendered as a join.
func holds(oc *probes.Component) bool {
	return oc != nil && oc.Receipt != nil
}

// healthyBut counts the healthy present members other than node.
func (g group) healthyBut(node string) int {
	n := 0
	for _, m := range g.present {
		if m != node && g.healthy[m] {
			n++
		}
	}
	return n
}

// union is how many nodes the present members and the manifest's
// members are together: the group this one is, or is being formed as.
func (g group) union(members []string) []string {
	out := slices.Clone(g.present)
	for _, m := range members {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// via is the first healthy present member, other than node, that the
// manifest keeps in the group: it runs the membership hook.
func (g group) via(node string) string {
	for _, m := range g.present {
		if m != node && g.healthy[m] && g.member[m] {
			return m
		}
	}
	return ""
}

// majority is the smallest majority of a group of n.
func majority(n int) int { return n/2 + 1 }

// MembershipOf is a with the change of its quorum group it makes, as the
// observations of every node show the group now: an install on a node
// that holds nothing of the component, into a group whose present
// members are a majority of it and the manifest's members together (a
// group that exists, not one being formed, whose founders are all in
// its initial membership), is a join (Members: the present members and
// the node); a
// remove from a node the manifest no longer places a present component
// on is a leave (Members: the present members but the node). Via is the
// healthy member that stays which runs the hook, "" when there is none.
// Any other action is returned with no membership. It is pure, and the
// one rule for Diff (what plan shows), NextWave (what it releases) and
// the status.
func MembershipOf(d *Desired, obs map[string]probes.Observed, a Action) Action {
	a.Membership, a.Via, a.Members = "", "", ""
	info := d.Components[a.Component]
	if info == nil || !info.Quorum || !info.Present {
		return a
	}
	o := obs[a.Node]
	if !o.Known {
		return a
	}
	switch a.Kind {
	case ActionInstall:
		if holds(o.Components[a.Component]) {
			return a // a repair of a member
		}
		g := groupOf(d, obs, a.Component)
		if len(g.present) < majority(len(g.union(info.Members))) {
			// A group being formed: its founding members start together,
			// each listed in the others' initial membership already.
			return a
		}
		members := slices.Clone(g.present)
		members = append(members, a.Node)
		a.Membership, a.Via, a.Members = MemberJoin, g.via(a.Node), strings.Join(inNodeOrder(d, members), ",")
	case ActionRemove:
		if slices.Contains(info.Members, a.Node) {
			return a
		}
		g := groupOf(d, obs, a.Component)
		members := slices.DeleteFunc(slices.Clone(g.present), func(m string) bool { return m == a.Node })
		a.Membership, a.Via, a.Members = MemberLeave, g.via(a.Node), strings.Join(members, ",")
	}
	return a
}

// inNodeOrder sorts node names by their place in the manifest.
func inNodeOrder(d *Desired, names []string) []string {
	pos := make(map[string]int, len(d.Nodes))
	for i, n := range d.Nodes {
		pos[n.Name] = i
	}
	slices.SortFunc(names, func(a, b string) int { return pos[a] - pos[b] })
	return names
}

// markMembership sets the membership of every action of the plan.
func markMembership(d *Desired, obs map[string]probes.Observed, p *Plan) {
	for i := range p.Nodes {
		for j, a := range p.Nodes[i].Actions {
			p.Nodes[i].Actions[j] = MembershipOf(d, obs, a)
		}
	}
}

// membershipChange releases at most one join or leave of a quorum
// component (cands are its joins, or its leaves), one member at a time:
//   - nothing else of the component runs (a join in flight counts until
//     the probe after it has seen the new member);
//   - a join only while the healthy members are a majority of the group
//     it makes: adding a member the group cannot reach yet must not cost
//     the quorum;
//   - a leave only while the other healthy members are a majority of the
//     group it leaves: the member stops before postLeave removes it, so
//     for that time the group is the old one with one member down (a
//     group of two cannot shrink: the one left alone has no majority of
//     two);
//   - a member that stays and is healthy runs the hook.
func (r *rollout) membershipChange(comp string, cands, running []Action) {
	if len(running) > 0 {
		r.wait("%s: quorum: %s while %s changes", comp, waiting(len(cands), cands[0].Membership), running[0].Node)
		return
	}
	for i, a := range cands {
		if r.busy[a.Node] {
			continue
		}
		m, why := r.mayChange(comp, a)
		if why != "" {
			r.wait("%s: quorum: %s", comp, why)
			return
		}
		r.release(m)
		if rest := len(cands) - i - 1; rest > 0 {
			r.wait("%s: quorum: %s, one member at a time", comp, waiting(rest, m.Membership))
		}
		return
	}
	r.wait("%s: %s for their nodes to finish another action", comp, waiting(len(cands), cands[0].Membership))
}

// mayChange is a with its membership, and why it may not start now ("":
// it may) by the majority rule and the member to run its hook.
func (r *rollout) mayChange(comp string, a Action) (Action, string) {
	m := MembershipOf(r.d, r.obs, a)
	g := groupOf(r.d, r.obs, comp)
	size := len(g.present) + 1 // a join makes the group one larger
	if m.Membership == MemberLeave {
		size = len(g.present) // a leave stops the member before it leaves
	}
	need, healthy := majority(size), g.healthyBut(a.Node)
	switch {
	case healthy < need:
		return m, fmt.Sprintf("%s of %s waits: %d of the other members are healthy, a group of %d needs %d", m.Membership, a.Node, healthy, size, need)
	case m.Via == "":
		return m, fmt.Sprintf("%s of %s waits for a healthy member that stays to run its hook", m.Membership, a.Node)
	}
	return m, ""
}

// firstFree is the first candidate whose node is not busy.
func (r *rollout) firstFree(cands []Action) (Action, bool) {
	for _, a := range cands {
		if !r.busy[a.Node] {
			return a, true
		}
	}
	return Action{}, false
}

// splitMembership separates the actions that change the group's
// membership (by the observations now) from the others.
func (r *rollout) splitMembership(cands []Action) (changes, others []Action) {
	for _, a := range cands {
		if MembershipOf(r.d, r.obs, a).Membership != "" {
			changes = append(changes, a)
		} else {
			others = append(others, a)
		}
	}
	return changes, others
}

// memberList is a.Members as names.
func memberList(a Action) []string {
	if a.Members == "" {
		return nil
	}
	return strings.Split(a.Members, ",")
}

// MembershipWork is what a join or a leave runs beside the steps of its
// install or remove, rendered for that change.
type MembershipWork struct {
	// Via is the member that stays, which runs the hook.
	Via *DesiredNode
	// HookName is preJoin or postLeave; Hook is nil when the manifest
	// sets none (the service needs no command of its own).
	HookName string
	Hook     *manifests.Hook
	// Want, for a join, is the component as the joining node gets it:
	// its templates see .Component.Joining and the group it joins.
	Want *DesiredComponent
}

// ErrNoMember is a join or leave with no member to run its hook on.
var ErrNoMember = errors.New("no member that stays to run the membership hook")

// ForMembership renders what action a's change of its group needs: the
// hook as it runs on a.Via (.Node is that member, .Member the node that
// joins or leaves, .Component.Members the group after the change) and,
// for a join, the component for the joining node. It is pure: the
// templates of the manifest d was compiled from, with a budget of their
// own.
func (d *Desired) ForMembership(a Action) (*MembershipWork, error) {
	if d.loaded == nil {
		return nil, errors.New("membership change: the desired state has no manifest to render it from")
	}
	c := d.loaded.Cluster
	comp, ok := c.ComponentByName(a.Component)
	node, nok := c.NodeByName(a.Node)
	if !ok || !nok {
		return nil, fmt.Errorf("membership change: %s on %s is not in the manifest", a.Component, a.Node)
	}
	via, vok := c.NodeByName(a.Via)
	if a.Via == "" || !vok || d.Node(a.Via) == nil {
		return nil, ErrNoMember
	}
	m := manifests.Membership{Joining: a.Membership == MemberJoin, Member: a.Node, Members: memberList(a)}
	r := c.NewRenderer(context.Background()).ForMembership(m)
	w := &MembershipWork{Via: d.Node(a.Via), HookName: "postLeave"}
	if m.Joining {
		w.HookName = "preJoin"
	}
	h, err := r.RenderHook(r.ComponentPath(comp)+".hooks."+w.HookName, comp.Hooks.ByName(w.HookName), via, comp)
	if err != nil {
		return nil, err
	}
	w.Hook = h
	if m.Joining {
		if w.Want, err = compileComponent(d.loaded, r, nil, node, comp); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// unprobed are the members of comp with no observation yet: until each
// is probed nobody can tell a join from a founding member's install.
func (r *rollout) unprobed(comp string) []string {
	var out []string
	for _, m := range r.d.Components[comp].Members {
		if _, ok := r.obs[m]; !ok {
			out = append(out, m)
		}
	}
	return out
}

// fresh reports whether a is an install on a node holding nothing of
// its component: a join or a founding member's install.
func (r *rollout) fresh(a Action) bool {
	return a.Kind == ActionInstall && !holds(r.obs[a.Node].Components[a.Component])
}
