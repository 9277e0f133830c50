package metrics

import (
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/prometheus/client_golang/prometheus"
)

// statusCollector turns one status snapshot into gauges at scrape time.
// Nothing is cached between scrapes: a node or component that is gone from
// the snapshot is gone from the next scrape.
type statusCollector struct {
	descs    statusDescs
	snapshot func() plan.ClusterStatus
	sshConns func() int
	// noNodeSeries: no series with a node label (WithoutNodeSeries).
	noNodeSeries bool
}

var _ prometheus.Collector = (*statusCollector)(nil)

func newStatusCollector(snapshot func() plan.ClusterStatus, sshConns func() int) *statusCollector {
	return &statusCollector{descs: newStatusDescs(), snapshot: snapshot, sshConns: sshConns}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, desc := range []*prometheus.Desc{
		d.manifestGeneration, d.manifestLoadSuccess, d.manifestLastLoad,
		d.nodes, d.nodeConverged, d.nodeLastConverged, d.nodeReachable, d.nodeLastProbe,
		d.componentInfo, d.rolloutHalted, d.rolloutHaltedInfo, d.paused, d.suspended, d.sshConnections,
	} {
		ch <- desc
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	d := c.descs
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}

	gauge(d.manifestGeneration, float64(s.Generation))
	gauge(d.manifestLoadSuccess, boolValue(s.LoadSuccess))
	gauge(d.manifestLastLoad, unixSeconds(s.LastLoadTime))
	gauge(d.paused, boolValue(s.Paused))
	gauge(d.suspended, boolValue(s.Suspended))
	gauge(d.rolloutHalted, boolValue(s.Rollout.Halted))
	if s.Rollout.Halted {
		gauge(d.rolloutHaltedInfo, 1, s.Rollout.Node, s.Rollout.Component)
	}
	conns := 0
	if c.sshConns != nil {
		conns = c.sshConns()
	}
	gauge(d.sshConnections, float64(conns))

	counts := map[string]int{}
	for _, n := range s.Nodes {
		state := nodeState(n, s.Paused)
		counts[state]++
		if c.noNodeSeries {
			continue
		}
		gauge(d.nodeConverged, boolValue(state == StateConverged), n.Name)
		gauge(d.nodeReachable, boolValue(n.Reachable), n.Name)
		gauge(d.nodeLastConverged, unixSeconds(n.LastConverged), n.Name)
		gauge(d.nodeLastProbe, unixSeconds(n.LastProbe), n.Name)
		for _, comp := range n.Components {
			gauge(d.componentInfo, 1, n.Name, comp.Name, comp.DesiredVersion, comp.ObservedVersion,
				string(comp.Sync), string(comp.Health))
		}
	}
	// Every state, zero included, so sums and ratios never see a gap.
	for _, state := range [...]string{StateConverged, StateNotConverged, StateUnreachable, StatePaused} {
		gauge(d.nodes, float64(counts[state]), state)
	}
}

// nodeState puts a node in exactly one drover_nodes state. An unreachable
// node counts as unreachable whatever its last known state was: what drover
// cannot see it cannot call converged.
func nodeState(n plan.NodeStatus, clusterPaused bool) string {
	switch {
	case !n.Reachable:
		return StateUnreachable
	case n.Converged:
		return StateConverged
	case n.Paused || clusterPaused:
		return StatePaused
	default:
		return StateNotConverged
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is the Prometheus convention for a timestamp gauge; the zero
// time ("never") is 0 rather than a large negative number.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
