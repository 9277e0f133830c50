package plan

import (
	"fmt"

	"github.com/drover-project/drover/probes"
)

// Held reports, without planning the fleet, that NextWave would start
// none of np's actions now: each is a disruptive install, upgrade or
// reconfigure of a component without a quorum whose maxUnavailable is
// used up by disruptive actions in flight and failed ones on other
// nodes, while the node itself is available for it (so repairing it is
// not free). false says nothing: ask NextWave.
//
// The daemon asks it before NextWave when a node with pending actions is
// looked at. NextWave plans the whole fleet, about 10 ms at 10,000 nodes,
// and during a rolling change every held-back node is looked at once a
// probe interval at least: without this, those passes alone took more
// than the daemon's one core and the change crawled.
func Held(d *Desired, np NodePlan, obs probes.Observed, st RolloutState) (string, bool) {
	dn := d.Node(np.Node)
	if dn == nil || len(np.Actions) == 0 || !obs.Known {
		return "", false
	}
	why := ""
	for _, a := range np.Actions {
		info := d.Components[a.Component]
		want := dn.Component(a.Component)
		if info == nil || info.Quorum || !a.Disruptive || a.Kind == ActionRemove || want == nil {
			return "", false
		}
		if h, _ := ComponentHealth(want, obs.Components[a.Component]); h == Degraded || h == Progressing || h == HealthUnknown {
			return "", false // unavailable already: NextWave may repair it for free
		}
		used := map[string]bool{}
		for _, f := range st.Failed {
			if f.Component == a.Component {
				if f.Node == np.Node {
					return "", false // it holds its slot already
				}
				used[f.Node] = true
			}
		}
		for _, r := range st.InFlight {
			if r.Component == a.Component && r.Disruptive && r.Kind != ActionRemove {
				used[r.Node] = true
			}
		}
		size := batchSize(d, a.Component, len(info.Members))
		if len(used) < size {
			return "", false
		}
		if why == "" {
			why = fmt.Sprintf("%s: %s for maxUnavailable %d (%d nodes unavailable)", a.Component, waiting(1, "action"), size, len(used))
		}
	}
	return why, true
}
