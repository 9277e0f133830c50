package metrics

import "github.com/prometheus/client_golang/prometheus"

// HAState is what a daemon of several on etcd knows of the election
// (cmd/drover/daemon_ha.go), read at every scrape.
type HAState struct {
	Leading bool   // this daemon leads and its term lasts
	Members int    // daemons campaigning, this one included
	Leader  string // the leading daemon's --ha-name; "" while none leads
	Fenced  bool   // this daemon lost its lease: it starts no step
	// ManifestMismatch: this daemon's manifest file is not the generation
	// the leader published; ManifestStale: it leads, and its file is a
	// generation acted on before and superseded, so it acts on nothing.
	ManifestMismatch bool
	ManifestStale    bool
	// ActedSeq counts the generations acted on in the cluster (0: none
	// known to this daemon).
	ActedSeq int64
}

// HANames are the series an HA collector exports (docs/METRICS.md).
var HANames = []string{"drover_ha_leader", "drover_ha_members", "drover_ha_leader_info", "drover_ha_fenced",
	"drover_ha_manifest_mismatch", "drover_ha_manifest_stale", "drover_ha_acted_generation"}

var (
	descHALeader   = prometheus.NewDesc("drover_ha_leader", "1 while this daemon leads the cluster and may act, else 0.", nil, nil)
	descHAMembers  = prometheus.NewDesc("drover_ha_members", "Daemons campaigning in etcd for the cluster, this one included.", nil, nil)
	descHALeaderOf = prometheus.NewDesc("drover_ha_leader_info", "The daemon leading the cluster now, by its --ha-name (1; absent while none leads).", []string{"leader"}, nil)
	descHAFenced   = prometheus.NewDesc("drover_ha_fenced", "1 once this daemon lost its lease: it starts no step (etcd unreachable, without quorum, or the lease expired).", nil, nil)
	descHAMismatch = prometheus.NewDesc("drover_ha_manifest_mismatch", "1 while this daemon's manifest file differs from the generation the leader published in etcd and acts on.", nil, nil)
	descHAStale    = prometheus.NewDesc("drover_ha_manifest_stale", "1 while this daemon leads and acts on nothing: its manifest is a generation acted on before and superseded.", nil, nil)
	descHAActed    = prometheus.NewDesc("drover_ha_acted_generation", "Count of the manifest generations acted on in the cluster, as published in etcd (0: none known).", nil, nil)
)

// HACollector exports the HA series from snapshot.
type HACollector struct{ snapshot func() HAState }

// NewHACollector is a collector of snapshot's answers.
func NewHACollector(snapshot func() HAState) *HACollector { return &HACollector{snapshot: snapshot} }

func (c *HACollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHALeader
	ch <- descHAMembers
	ch <- descHALeaderOf
	ch <- descHAFenced
	ch <- descHAMismatch
	ch <- descHAStale
	ch <- descHAActed
}

func (c *HACollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	ch <- prometheus.MustNewConstMetric(descHALeader, prometheus.GaugeValue, b2f(s.Leading))
	ch <- prometheus.MustNewConstMetric(descHAMembers, prometheus.GaugeValue, float64(s.Members))
	if s.Leader != "" {
		ch <- prometheus.MustNewConstMetric(descHALeaderOf, prometheus.GaugeValue, 1, s.Leader)
	}
	ch <- prometheus.MustNewConstMetric(descHAFenced, prometheus.GaugeValue, b2f(s.Fenced))
	ch <- prometheus.MustNewConstMetric(descHAMismatch, prometheus.GaugeValue, b2f(s.ManifestMismatch))
	ch <- prometheus.MustNewConstMetric(descHAStale, prometheus.GaugeValue, b2f(s.ManifestStale))
	ch <- prometheus.MustNewConstMetric(descHAActed, prometheus.GaugeValue, float64(s.ActedSeq))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
