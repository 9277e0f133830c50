package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// waveComp describes one component of a hand-built Desired.
type waveComp struct {
	name    string
	members []string
	deps    []string
	roles   []string
	quorum  bool
	mu      *manifests.IntOrPercent
}

// waveWorld is a Desired where every component is at version "2" and an
// observation where every member runs version "1", healthy; tests then
// spoil the observation and compare NextWave's choice.
type waveWorld struct {
	d   *Desired
	obs map[string]probes.Observed
}

// newWaveWorld builds nodes named in roles ("m1:master") in order.
func newWaveWorld(clusterMU manifests.IntOrPercent, roleOrder []string, nodes []string, comps ...waveComp) *waveWorld {
	d := &Desired{
		Generation: "gen-1",
		Components: map[string]*DesiredComponentInfo{},
		Rollout:    RolloutPolicy{RoleOrder: roleOrder, MaxUnavailable: clusterMU},
	}
	w := &waveWorld{d: d, obs: map[string]probes.Observed{}}
	for _, spec := range nodes {
		name, roles, _ := strings.Cut(spec, ":")
		n := &DesiredNode{Name: name}
		if roles != "" {
			n.Roles = strings.Split(roles, ",")
		}
		d.Nodes = append(d.Nodes, n)
		w.obs[name] = probes.Observed{Node: name, Known: true, Components: map[string]*probes.Component{}}
	}
	for _, c := range comps {
		d.Order = append(d.Order, c.name)
		d.Components[c.name] = &DesiredComponentInfo{
			Name: c.name, Version: "2", Present: true, Quorum: c.quorum,
			DependsOn: c.deps, Members: c.members, MaxUnavailable: c.mu, Roles: c.roles,
		}
		for _, m := range c.members {
			want := &DesiredComponent{Name: c.name, Version: "2", ConfigHash: "c", Unit: []byte("u"), UnitHash: "u",
				Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: 1}}}
			d.Node(m).Components = append(d.Node(m).Components, want)
			oc := oldVersion(c.name, "1")
			oc.Health = probes.HealthResult{Checked: true, OK: true}
			w.obs[m].Components[c.name] = oc
		}
	}
	return w
}

func (w *waveWorld) comp(node, comp string) *probes.Component { return w.obs[node].Components[comp] }

// synced makes comp on node current (no action) and healthy.
func (w *waveWorld) synced(node, comp string) {
	w.obs[node].Components[comp] = observedSynced(w.d.Node(node).Component(comp))
}

// missing removes comp from node: a fresh install.
func (w *waveWorld) missing(node, comp string) { delete(w.obs[node].Components, comp) }

func (w *waveWorld) failing(node, comp string) {
	w.comp(node, comp).Health = probes.HealthResult{Checked: true, Message: "refused"}
}

func (w *waveWorld) unknown(node string) {
	w.obs[node] = probes.Observed{Node: node, Reason: "unreachable", Error: "no route to host"}
}

func (w *waveWorld) wave(st RolloutState) Wave {
	return NextWave(w.d, Diff(w.d, w.obs), w.obs, st)
}

// released lists the wave's actions as "node/component".
func released(w Wave) []string {
	var out []string
	for _, a := range w.Actions {
		out = append(out, a.Node+"/"+a.Component)
	}
	return out
}

func nodeNames(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func inFlight(node, comp string, kind ActionKind, disruptive bool) Action {
	return Action{Node: node, Component: comp, Kind: kind, Disruptive: disruptive}
}

func TestWaveMaxUnavailable(t *testing.T) {
	n10 := nodeNames("n", 10)
	cases := []struct {
		name      string
		clusterMU *manifests.IntOrPercent
		compMU    *manifests.IntOrPercent
		members   []string
		spoil     func(w *waveWorld)
		st        RolloutState
		want      []string
	}{
		{name: "count", clusterMU: manifests.NewCount(2), members: n10[:5],
			want: []string{"n1/c", "n2/c"}},
		{name: "percent rounds down: 25% of 10 is 2", clusterMU: manifests.NewPercent(25), members: n10,
			want: []string{"n1/c", "n2/c"}},
		{name: "percent never below one: 10% of 5 is 1", clusterMU: manifests.NewPercent(10), members: n10[:5],
			want: []string{"n1/c"}},
		{name: "component override tighter", clusterMU: manifests.NewPercent(50), compMU: manifests.NewCount(1), members: n10[:6],
			want: []string{"n1/c"}},
		{name: "component override looser loses", clusterMU: manifests.NewCount(1), compMU: manifests.NewPercent(50), members: n10[:6],
			want: []string{"n1/c"}},
		{name: "component percent tighter: 34% of 7 is 2", clusterMU: manifests.NewPercent(50), compMU: manifests.NewPercent(34), members: n10[:7],
			want: []string{"n1/c", "n2/c"}},
		{name: "a degraded member uses budget but may itself be repaired", clusterMU: manifests.NewCount(2), members: n10[:5],
			spoil: func(w *waveWorld) { w.failing("n4", "c") },
			want:  []string{"n1/c", "n4/c"}},
		{name: "degraded members beyond the budget block healthy ones", clusterMU: manifests.NewCount(2), members: n10[:5],
			spoil: func(w *waveWorld) { w.failing("n2", "c"); w.failing("n3", "c"); w.failing("n4", "c") },
			want:  []string{"n2/c", "n3/c", "n4/c"}},
		{name: "unknown nodes count as unavailable", clusterMU: manifests.NewCount(2), members: n10[:5],
			spoil: func(w *waveWorld) { w.unknown("n1"); w.unknown("n2") },
			want:  nil},
		{name: "one unknown node leaves one slot", clusterMU: manifests.NewCount(2), members: n10[:5],
			spoil: func(w *waveWorld) { w.unknown("n1") },
			want:  []string{"n2/c"}},
		{name: "in-flight disruptive actions use budget", clusterMU: manifests.NewCount(2), members: n10[:5],
			st:   RolloutState{InFlight: []Action{inFlight("n1", "c", ActionUpgrade, true)}},
			want: []string{"n2/c"}},
		{name: "budget full in flight", clusterMU: manifests.NewCount(2), members: n10[:5],
			st:   RolloutState{InFlight: []Action{inFlight("n1", "c", ActionUpgrade, true), inFlight("n3", "c", ActionUpgrade, true)}},
			want: nil},
		{name: "fresh installs are bounded by the batch size", clusterMU: manifests.NewCount(2), members: n10[:5],
			spoil: func(w *waveWorld) {
				for _, n := range n10[:5] {
					w.missing(n, "c")
				}
			},
			want: []string{"n1/c", "n2/c"}},
		{name: "fresh installs count in-flight installs", clusterMU: manifests.NewCount(2), members: n10[:5],
			spoil: func(w *waveWorld) {
				for _, n := range n10[:5] {
					w.missing(n, "c")
				}
			},
			st:   RolloutState{InFlight: []Action{inFlight("n1", "c", ActionInstall, false)}},
			want: []string{"n2/c"}},
		{name: "missing members take nothing from the disruptive budget", clusterMU: manifests.NewCount(1), members: n10[:3],
			spoil: func(w *waveWorld) { w.missing("n1", "c") },
			want:  []string{"n1/c", "n2/c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWaveWorld(*tc.clusterMU, nil, n10, waveComp{name: "c", members: tc.members, mu: tc.compMU})
			if tc.spoil != nil {
				tc.spoil(w)
			}
			got := w.wave(tc.st)
			if !slices.Equal(released(got), tc.want) {
				t.Errorf("released %v, want %v; waiting: %q", released(got), tc.want, got.Waiting)
			}
		})
	}
}

func TestWaveRoleOrder(t *testing.T) {
	nodes := []string{"a1:agent", "m1:master", "p1:public_agent", "x1:other", "m2:master"}
	all := []string{"a1", "m1", "p1", "x1", "m2"}
	w := newWaveWorld(*manifests.NewCount(10), []string{"master", "agent"}, nodes, waveComp{name: "c", members: all})

	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m1/c", "m2/c"}) {
		t.Fatalf("first wave %v, want the masters", got)
	}
	// A master still in flight holds the agents back.
	w.synced("m1", "c")
	st := RolloutState{InFlight: []Action{inFlight("m2", "c", ActionUpgrade, true)}}
	if got := w.wave(st); len(got.Actions) != 0 || !strings.Contains(strings.Join(got.Waiting, "\n"), "later roles wait for master nodes") {
		t.Fatalf("agents released while a master is in flight: %v %q", released(got), got.Waiting)
	}
	w.synced("m2", "c")
	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"a1/c"}) {
		t.Fatalf("second role wave %v, want a1", got)
	}
	// Roles not in roleOrder come last, together, in manifest order.
	w.synced("a1", "c")
	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"p1/c", "x1/c"}) {
		t.Fatalf("unlisted roles wave %v, want p1 and x1", got)
	}
}

func TestWaveDependsOn(t *testing.T) {
	nodes := []string{"n1", "n2"}
	w := newWaveWorld(*manifests.NewCount(5), nil, nodes,
		waveComp{name: "base", members: nodes},
		waveComp{name: "mid", members: []string{"n2"}, deps: []string{"base"}},
		waveComp{name: "top", members: []string{"n1"}, deps: []string{"mid"}},
	)
	// mid has nothing to do, but top depends on base through it.
	w.synced("n2", "mid")
	got := w.wave(RolloutState{})
	if !slices.Equal(released(got), []string{"n1/base", "n2/base"}) {
		t.Fatalf("released %v, want base only", released(got))
	}
	if !slices.Contains(got.Waiting, "top: 1 action waits for base to finish") {
		t.Errorf("waiting = %q", got.Waiting)
	}

	// base is done but not healthy on n2: top still waits.
	w.synced("n1", "base")
	w.synced("n2", "base")
	w.comp("n2", "base").Unit.ActiveState = "activating"
	got = w.wave(RolloutState{})
	if len(got.Actions) != 0 || !slices.Contains(got.Waiting, "top: 1 action waits for base to be healthy on n2 (unit activating)") {
		t.Fatalf("released %v, waiting %q", released(got), got.Waiting)
	}

	// In flight counts as pending.
	w.comp("n2", "base").Unit.ActiveState = "active"
	st := RolloutState{InFlight: []Action{inFlight("n2", "base", ActionRestart, true)}}
	if got := w.wave(st); len(got.Actions) != 0 {
		t.Fatalf("released %v while base is in flight", released(got))
	}
	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"n1/top"}) {
		t.Fatalf("released %v, want top", got)
	}
}

func TestWaveOneActionPerNode(t *testing.T) {
	w := newWaveWorld(*manifests.NewCount(5), nil, []string{"n1", "n2"},
		waveComp{name: "a", members: []string{"n1"}},
		waveComp{name: "b", members: []string{"n1", "n2"}},
	)
	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"n1/a", "n2/b"}) {
		t.Fatalf("released %v", got)
	}
	st := RolloutState{InFlight: []Action{inFlight("n2", "other", ActionRestart, false)}}
	if got := released(w.wave(st)); !slices.Equal(got, []string{"n1/a"}) {
		t.Fatalf("released %v onto a busy node", got)
	}
}

func TestWaveQuorum(t *testing.T) {
	masters := []string{"m1", "m2", "m3"}
	newZK := func(mu manifests.IntOrPercent, members []string) *waveWorld {
		return newWaveWorld(mu, nil, masters, waveComp{name: "zk", members: members, quorum: true})
	}
	t.Run("one at a time whatever maxUnavailable", func(t *testing.T) {
		w := newZK(*manifests.NewCount(3), masters)
		if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m1/zk"}) {
			t.Fatalf("released %v", got)
		}
	})
	t.Run("the member that leads changes last", func(t *testing.T) {
		w := newZK(*manifests.NewCount(1), masters)
		w.comp("m1", "zk").Leader = probes.HealthResult{Checked: true, OK: true, Message: "exit 0"}
		w.comp("m2", "zk").Leader = probes.HealthResult{Checked: true, Message: "exit 1"}
		got := w.wave(RolloutState{})
		if !slices.Equal(released(got), []string{"m2/zk"}) || !slices.Contains(got.Waiting, "zk: quorum: m1 leads, so it changes last") {
			t.Fatalf("released %v, waiting %q; want m2 before m1, which leads", released(got), got.Waiting)
		}
		w.synced("m2", "zk")
		if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m3/zk"}) {
			t.Fatalf("released %v, want m3", got)
		}
		w.synced("m3", "zk")
		if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m1/zk"}) {
			t.Fatalf("released %v, want the leader m1 once it is the last", got)
		}
	})
	t.Run("two members claiming to lead: node order", func(t *testing.T) {
		w := newZK(*manifests.NewCount(1), masters)
		for _, m := range []string{"m1", "m3"} {
			w.comp(m, "zk").Leader = probes.HealthResult{Checked: true, OK: true}
		}
		if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m1/zk"}) {
			t.Fatalf("released %v", got)
		}
	})
	t.Run("nothing while a member is in flight", func(t *testing.T) {
		w := newZK(*manifests.NewCount(3), masters)
		w.synced("m1", "zk")
		got := w.wave(RolloutState{InFlight: []Action{inFlight("m1", "zk", ActionUpgrade, true)}})
		if len(got.Actions) != 0 {
			t.Fatalf("released %v", released(got))
		}
	})
	t.Run("nothing while another member is unhealthy, which is repaired first", func(t *testing.T) {
		w := newZK(*manifests.NewCount(3), masters)
		w.synced("m1", "zk")
		w.synced("m3", "zk")
		w.failing("m1", "zk") // m1: restart pending; m2 upgrade must wait
		got := w.wave(RolloutState{})
		if !slices.Equal(released(got), []string{"m1/zk"}) {
			t.Fatalf("released %v, want the repair of m1", released(got))
		}
		w.synced("m1", "zk")
		w.comp("m1", "zk").Unit.ActiveState = "activating" // restarted, not healthy yet
		got = w.wave(RolloutState{})
		if len(got.Actions) != 0 || !slices.Contains(got.Waiting, "zk: quorum: 1 action waits for m1 to be healthy (unit activating)") {
			t.Fatalf("released %v, waiting %q", released(got), got.Waiting)
		}
	})
	t.Run("nothing while another member is unknown", func(t *testing.T) {
		w := newZK(*manifests.NewCount(3), masters)
		w.unknown("m3")
		if got := w.wave(RolloutState{}); len(got.Actions) != 0 {
			t.Fatalf("released %v", released(got))
		}
	})
	t.Run("two members still one at a time", func(t *testing.T) {
		w := newZK(*manifests.NewPercent(100), masters[:2])
		if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m1/zk"}) {
			t.Fatalf("released %v", got)
		}
	})
	t.Run("bootstrap installs every member at once", func(t *testing.T) {
		w := newZK(*manifests.NewCount(1), masters)
		for _, m := range masters {
			w.missing(m, "zk")
		}
		if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"m1/zk", "m2/zk", "m3/zk"}) {
			t.Fatalf("released %v", got)
		}
	})
	t.Run("bootstrap goes on while other members' installs are in flight", func(t *testing.T) {
		w := newZK(*manifests.NewCount(1), masters)
		for _, m := range masters {
			w.missing(m, "zk")
		}
		// The controller admits node by node: m1's install already runs.
		got := w.wave(RolloutState{InFlight: []Action{inFlight("m1", "zk", ActionInstall, false)}})
		if !slices.Equal(released(got), []string{"m2/zk", "m3/zk"}) {
			t.Fatalf("released %v, want m2 and m3 beside m1", released(got))
		}
	})
	t.Run("members that are down are brought up before a join and any upgrade", func(t *testing.T) {
		w := newZK(*manifests.NewCount(1), masters)
		w.missing("m2", "zk")                          // a new member: joins the group m1 keeps
		w.comp("m3", "zk").Unit.ActiveState = "failed" // upgrade of a dead member
		got := w.wave(RolloutState{})
		if !slices.Equal(released(got), []string{"m3/zk"}) {
			t.Fatalf("released %v, want m3 (down), not m2 (joins) nor m1 (running)", released(got))
		}
		for _, want := range []string{"zk: quorum: 1 join waits until members that are down are up", "zk: quorum: 1 action waits until members that are down are up"} {
			if !slices.Contains(got.Waiting, want) {
				t.Errorf("waiting = %q, want %q", got.Waiting, want)
			}
		}
	})
	t.Run("a missing member blocks disruptive changes to the others", func(t *testing.T) {
		w := newZK(*manifests.NewCount(3), masters)
		w.missing("m3", "zk")
		// m3's install is in flight: m1 and m2 must wait.
		got := w.wave(RolloutState{InFlight: []Action{inFlight("m3", "zk", ActionInstall, false)}})
		if len(got.Actions) != 0 {
			t.Fatalf("released %v", released(got))
		}
		// m3 is paused, so its install is held and it stays Missing.
		w.d.Node("m3").Paused = true
		got = w.wave(RolloutState{})
		if len(got.Actions) != 0 || !slices.Contains(got.Waiting, "zk: quorum: 2 actions wait for m1 to be healthy (the other 1 healthy members are no majority of the 2 in the group)") {
			t.Fatalf("released %v, waiting %q", released(got), got.Waiting)
		}
	})
}

func TestWaveHalt(t *testing.T) {
	w := newWaveWorld(*manifests.NewCount(1), nil, []string{"n1"}, waveComp{name: "c", members: []string{"n1"}})
	halt := HaltFor("gen-1", Action{Node: "n1", Component: "c", Kind: ActionUpgrade, From: "1", To: "2"}, errors.New("health check failed"))
	if !halt.Halted || halt.Reason != "upgrade c 1 -> 2 on n1 failed: health check failed" || halt.Node != "n1" || halt.Component != "c" {
		t.Fatalf("HaltFor = %+v", halt)
	}
	got := w.wave(RolloutState{Halt: halt})
	if !got.Halted || got.HaltReason != halt.Reason || len(got.Actions) != 0 {
		t.Fatalf("halted wave = %+v", got)
	}
	// A new manifest (generation) lifts the halt.
	w.d.Generation = "gen-2"
	got = w.wave(RolloutState{Halt: halt})
	if got.Halted || !slices.Equal(released(got), []string{"n1/c"}) {
		t.Fatalf("wave after a manifest change = %+v", got)
	}
}

func TestWavePaused(t *testing.T) {
	nodes := []string{"n1", "n2"}
	w := newWaveWorld(*manifests.NewCount(5), nil, nodes,
		waveComp{name: "base", members: nodes},
		waveComp{name: "top", members: []string{"n2"}, deps: []string{"base"}},
	)
	w.d.Paused = true
	if got := w.wave(RolloutState{}); len(got.Actions) != 0 || !slices.Equal(got.Waiting, []string{"cluster paused: nothing is changed"}) {
		t.Fatalf("paused cluster wave = %+v", got)
	}
	// A paused node's actions are held and hold nobody else back: top on
	// n2 goes although base on n1 is pending (and paused).
	w.d.Paused = false
	w.d.Node("n1").Paused = true
	w.missing("n1", "base") // its install is held, so it stays Missing
	w.synced("n2", "base")
	got := w.wave(RolloutState{})
	if !slices.Equal(released(got), []string{"n2/top"}) || !slices.Contains(got.Waiting, "n1: paused, 1 action held") {
		t.Fatalf("released %v, waiting %q", released(got), got.Waiting)
	}
}

func TestWaveRemovalsLastInReverseDependencyOrder(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	w := newWaveWorld(*manifests.NewCount(5), nil, nodes,
		waveComp{name: "base", members: []string{"n1"}},
		waveComp{name: "top", members: []string{"n1"}, deps: []string{"base"}},
	)
	// n2 and n3 should not have them any more; base on n1 still needs its
	// upgrade. Different nodes, so only ordering can hold a removal back.
	w.obs["n2"].Components["top"] = oldVersion("top", "1")
	w.obs["n3"].Components["base"] = oldVersion("base", "1")
	w.synced("n1", "top")
	got := w.wave(RolloutState{})
	if !slices.Equal(released(got), []string{"n1/base"}) || !slices.Contains(got.Waiting, "removals wait for 1 other action to finish") {
		t.Fatalf("released %v, waiting %q", released(got), got.Waiting)
	}
	w.synced("n1", "base")
	got = w.wave(RolloutState{})
	if !slices.Equal(released(got), []string{"n2/top"}) || !slices.Contains(got.Waiting, "base: 1 removal waits for top, which depends on it, to be removed") {
		t.Fatalf("released %v, want top removed before base; waiting %q", released(got), got.Waiting)
	}
	if got := w.wave(RolloutState{InFlight: []Action{inFlight("n2", "top", ActionRemove, true)}}); len(got.Actions) != 0 {
		t.Fatalf("released %v while top's removal runs", released(got))
	}
	delete(w.obs["n2"].Components, "top")
	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"n3/base"}) {
		t.Fatalf("released %v", got)
	}
}

// TestWaveQuorumCurrentGenerationOnly: the daemon keeps each node's last
// plan, so right after an edit some members still carry the previous
// generation's (empty) plan. A quorum component changes only once every
// member's plan is of the current generation: otherwise the leader,
// planned first, looks like the only candidate and goes first.
func TestWaveQuorumCurrentGenerationOnly(t *testing.T) {
	masters := []string{"m1", "m2", "m3"}
	cases := []struct {
		name     string
		stale    []string // members whose plan is still the previous generation's, with no actions
		released []string
		waiting  string
	}{
		{"every member planned: the leader last", nil, []string{"m2/zk"}, "zk: quorum: m1 leads, so it changes last"},
		{"only the leader planned", []string{"m2", "m3"}, nil, "zk: quorum: 1 action waits until m2, m3 are planned for this manifest"},
		{"one member not yet", []string{"m3"}, nil, "zk: quorum: 2 actions wait until m3 is planned for this manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWaveWorld(*manifests.NewCount(3), nil, masters, waveComp{name: "zk", members: masters, quorum: true})
			w.comp("m1", "zk").Leader = probes.HealthResult{Checked: true, OK: true}
			plan := Diff(w.d, w.obs)
			for i, np := range plan.Nodes {
				if slices.Contains(tc.stale, np.Node) {
					plan.Nodes[i].Generation, plan.Nodes[i].Actions = "gen-0", []Action{}
				}
			}
			got := NextWave(w.d, plan, w.obs, RolloutState{})
			if !slices.Equal(released(got), tc.released) || !slices.Contains(got.Waiting, tc.waiting) {
				t.Errorf("released %v, waiting %q; want %v and %q", released(got), got.Waiting, tc.released, tc.waiting)
			}
		})
	}
	// A component without quorum is not held back by another node's plan.
	w := newWaveWorld(*manifests.NewCount(3), nil, masters, waveComp{name: "app", members: masters})
	plan := Diff(w.d, w.obs)
	plan.Nodes[2].Generation, plan.Nodes[2].Actions = "gen-0", []Action{}
	if got := released(NextWave(w.d, plan, w.obs, RolloutState{})); !slices.Equal(got, []string{"m1/app", "m2/app"}) {
		t.Errorf("released %v, want m1 and m2", got)
	}
}

// TestWaveFailedStepHoldsItsSlot: a node whose action failed at a step
// stays unavailable for that component until it succeeds: it takes a
// slot of maxUnavailable, and a quorum component retries only it.
func TestWaveFailedStepHoldsItsSlot(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4"}
	w := newWaveWorld(*manifests.NewCount(2), nil, nodes, waveComp{name: "app", members: nodes})
	failed := []Action{{Node: "n1", Component: "app", Kind: ActionUpgrade, Disruptive: true}}
	got := w.wave(RolloutState{Failed: failed})
	if !slices.Equal(released(got), []string{"n1/app", "n2/app"}) {
		t.Errorf("maxUnavailable 2 with n1 failed: released %v, want n1 (its retry) and n2", released(got))
	}
	got = w.wave(RolloutState{Failed: failed, InFlight: []Action{inFlight("n2", "app", ActionUpgrade, true)}})
	if !slices.Equal(released(got), []string{"n1/app"}) {
		t.Errorf("maxUnavailable 2 with n1 failed and n2 in flight: released %v, want only n1's retry", released(got))
	}

	masters := []string{"m1", "m2", "m3"}
	zk := newWaveWorld(*manifests.NewCount(3), nil, masters, waveComp{name: "zk", members: masters, quorum: true})
	got = zk.wave(RolloutState{Failed: []Action{{Node: "m2", Component: "zk", Kind: ActionUpgrade, Disruptive: true}}})
	if !slices.Equal(released(got), []string{"m2/zk"}) || !slices.Contains(got.Waiting, "zk: quorum: 2 actions wait while the failed action on m2 is retried") {
		t.Errorf("quorum with m2 failed: released %v, waiting %q; want only m2", released(got), got.Waiting)
	}
}

// TestWaveOnlyComponents: with OnlyComponents (apply --component) the
// other components' actions are held: never released, named in Waiting,
// and still counted, so a targeted component that depends on a held one
// waits for it, and so do removals. Independent targeted work on the same
// node goes ahead.
func TestWaveOnlyComponents(t *testing.T) {
	nodes := []string{"n1", "n2"}
	w := newWaveWorld(*manifests.NewCount(5), nil, nodes,
		waveComp{name: "a", members: nodes},
		waveComp{name: "b", members: nodes},
		waveComp{name: "c", members: []string{"n1"}, deps: []string{"a"}},
	)
	w.d.OnlyComponents = []string{"b"}
	got := w.wave(RolloutState{})
	if !slices.Equal(released(got), []string{"n1/b", "n2/b"}) {
		t.Fatalf("released %v, want b alone", released(got))
	}
	for _, want := range []string{"a: 2 actions held: not a targeted component", "c: 1 action held: not a targeted component"} {
		if !slices.Contains(got.Waiting, want) {
			t.Errorf("waiting %q lacks %q", got.Waiting, want)
		}
	}

	// c targeted: it depends on a, whose held upgrade it waits for.
	w.d.OnlyComponents = []string{"c"}
	got = w.wave(RolloutState{})
	if len(got.Actions) != 0 || !slices.Contains(got.Waiting, "c: 1 action waits for a to finish") {
		t.Fatalf("released %v, waiting %q: c must wait for the held a", released(got), got.Waiting)
	}

	// A removal waits for held work too.
	w.synced("n1", "a")
	w.synced("n2", "a")
	w.synced("n1", "c")
	w.obs["n1"].Components["gone"] = oldVersion("gone", "1")
	w.d.OnlyComponents = []string{"gone"}
	got = w.wave(RolloutState{})
	if len(got.Actions) != 0 || !slices.ContainsFunc(got.Waiting, func(s string) bool { return strings.HasPrefix(s, "removals wait for") }) {
		t.Fatalf("released %v, waiting %q: the removal must wait for b's held actions", released(got), got.Waiting)
	}
	w.d.OnlyComponents = nil
	if got := released(w.wave(RolloutState{})); !slices.Equal(got, []string{"n1/b", "n2/b"}) {
		t.Fatalf("without OnlyComponents released %v", got)
	}
}
