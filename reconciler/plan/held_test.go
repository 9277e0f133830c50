package plan

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/drover-project/drover/manifests"
)

// TestHeldAgreesWithNextWave: in random fleets (two components, one of
// them dependent, random batch sizes, some nodes failing their check,
// unreachable, current or without the component, random disruptive
// actions in flight and failed), every node Held says is held gets
// nothing from NextWave. And Held does say so for some nodes: the check
// is not vacuous.
func TestHeldAgreesWithNextWave(t *testing.T) {
	held := 0
	for seed := range uint64(400) {
		rng := rand.New(rand.NewPCG(seed, 7))
		nodes := nodeNames("n", 4+rng.IntN(12))
		var bMembers []string
		for _, n := range nodes {
			if rng.IntN(2) == 0 {
				bMembers = append(bMembers, n)
			}
		}
		comps := []waveComp{{name: "a", members: nodes}}
		if len(bMembers) > 0 {
			b := waveComp{name: "b", members: bMembers}
			if rng.IntN(2) == 0 {
				b.deps = []string{"a"}
			}
			if rng.IntN(2) == 0 {
				mu := manifests.NewCount(1 + rng.IntN(2))
				b.mu = mu
			}
			comps = append(comps, b)
		}
		w := newWaveWorld(*manifests.NewCount(1 + rng.IntN(4)), nil, nodes, comps...)
		var st RolloutState
		for _, c := range comps {
			for _, n := range c.members {
				switch rng.IntN(8) {
				case 0:
					w.failing(n, c.name)
				case 1:
					w.synced(n, c.name)
				case 2:
					w.missing(n, c.name)
				case 3:
					st.InFlight = append(st.InFlight, inFlight(n, c.name, ActionUpgrade, rng.IntN(3) > 0))
				case 4:
					st.Failed = append(st.Failed, inFlight(n, c.name, ActionUpgrade, true))
				}
			}
		}
		if rng.IntN(10) == 0 {
			w.unknown(nodes[rng.IntN(len(nodes))])
		}
		p := Diff(w.d, w.obs)
		wave := NextWave(w.d, p, w.obs, st)
		for _, np := range p.Nodes {
			if slices.ContainsFunc(st.InFlight, func(a Action) bool { return a.Node == np.Node }) {
				continue // the daemon never asks for a node running an action
			}
			why, ok := Held(w.d, np, w.obs[np.Node], st)
			if !ok {
				continue
			}
			held++
			if why == "" {
				t.Errorf("seed %d: %s held without a reason", seed, np.Node)
			}
			for _, a := range wave.Actions {
				if a.Node == np.Node {
					t.Errorf("seed %d: Held says %s waits (%s), NextWave starts %s %s there", seed, np.Node, why, a.Kind, a.Component)
				}
			}
		}
	}
	if held < 50 {
		t.Errorf("Held held only %d nodes in 400 fleets: the test checks little", held)
	}
}
