// Package metrics defines every Prometheus metric drover exports, the rule
// file of alerts shipped with it, and the Grafana dashboard.
//
// The metric names are a contract (docs/DESIGN.md, "Metrics"): dashboards and
// alert rules depend on them, so rename nothing once shipped. This file is
// the only place a name, a label or a help string is written.
//
// Two kinds of metric live here. Counters and histograms are updated by the
// daemon as work happens (Observe* methods). Everything about the current
// state of the cluster is read from a status snapshot at scrape time by
// statusCollector (collector.go), so a node removed from the manifest leaves
// no stale series behind.
package metrics

import (
	"runtime"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "drover"

// Result label values for drover_reconcile_total and drover_actions_total.
// They match reconciler.ActionRecord.Result.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// Node states of drover_nodes{state}. Every node is in exactly one, checked
// in this order: unreachable, converged, paused (not converged, but drover
// is told to change nothing), not_converged.
const (
	StateUnreachable  = "unreachable"
	StateConverged    = "converged"
	StatePaused       = "paused"
	StateNotConverged = "not_converged"
)

// Metrics holds the metrics the daemon updates as it works. The status
// gauges are not here: they are computed from the snapshot on each scrape.
type Metrics struct {
	reconciles        *prometheus.CounterVec
	reconcileDuration prometheus.Histogram
	actions           *prometheus.CounterVec
	actionDuration    *prometheus.HistogramVec
	probeDuration     prometheus.Histogram
	probeErrors       *prometheus.CounterVec
	probeInterval     prometheus.Gauge
}

// Option changes how New builds the metrics.
type Option func(*options)

type options struct {
	version, revision string
	noNodeSeries      bool
}

// WithoutNodeSeries leaves out the series with a node label
// (drover_node_*, drover_component_info): a fleet of 10,000 nodes makes
// them 50,000 series and megabytes a scrape. The aggregates
// (drover_nodes by state and the rest) stay, and so does
// drover_rollout_halted_info, which names one node at most.
func WithoutNodeSeries() Option {
	return func(o *options) { o.noNodeSeries = true }
}

// WithBuildInfo sets the version and VCS revision drover_build_info reports.
// Without it they are "dev" and "unknown".
func WithBuildInfo(version, revision string) Option {
	return func(o *options) { o.version, o.revision = version, revision }
}

// New builds every drover metric and registers it on reg. snapshot is called
// once per scrape and must be safe for concurrent use; sshConns reports the
// number of open SSH connections in the pool. It panics if a metric cannot be
// registered (a name registered twice is a programming error).
func New(reg prometheus.Registerer, snapshot func() plan.ClusterStatus, sshConns func() int, opts ...Option) *Metrics {
	o := options{version: "dev", revision: "unknown"}
	for _, opt := range opts {
		opt(&o)
	}
	// Histogram buckets, in seconds. Probes are one SSH round trip; actions
	// include uploading artifacts and waiting for health checks; a reconcile
	// of a node is a probe plus its actions.
	probeBuckets := []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	actionBuckets := []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
	reconcileBuckets := []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "reconcile_total",
			Help:      "Number of node reconciles (probe, diff and actions) finished, by result.",
		}, []string{"result"}),
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "reconcile_duration_seconds",
			Help:      "Time taken to reconcile one node, probe and actions included.",
			Buckets:   reconcileBuckets,
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "actions_total",
			Help:      "Number of actions run on nodes, by action kind, component and result.",
		}, []string{"action", "component", "result"}),
		actionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "action_duration_seconds",
			Help:      "Time taken by one action on one node, by action kind.",
			Buckets:   actionBuckets,
		}, []string{"action"}),
		probeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "probe_duration_seconds",
			Help:      "Time taken to probe one node over SSH, failed probes included.",
			Buckets:   probeBuckets,
		}),
		probeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "probe_errors_total",
			Help:      "Number of node probes that failed, by reason.",
		}, []string{"reason"}),
		probeInterval: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "probe_interval_seconds",
			Help:      "Configured interval between two probes of the same node.",
		}),
	}
	// Both results exist from the start, so an increase from zero to the
	// first failure is visible to rate() and the error-ratio alert.
	for _, r := range []string{ResultSuccess, ResultFailure} {
		m.reconciles.WithLabelValues(r)
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "A metric with a constant value of 1, labelled by the version, revision and Go version drover was built from.",
		ConstLabels: prometheus.Labels{
			"version":   o.version,
			"revision":  o.revision,
			"goversion": runtime.Version(),
		},
	})
	buildInfo.Set(1)
	sc := newStatusCollector(snapshot, sshConns)
	sc.noNodeSeries = o.noNodeSeries
	reg.MustRegister(
		m.reconciles, m.reconcileDuration,
		m.actions, m.actionDuration,
		m.probeDuration, m.probeErrors, m.probeInterval,
		buildInfo,
		sc,
	)
	return m
}

// ObserveReconcile records one finished reconcile of a node. result is
// ResultSuccess or ResultFailure.
func (m *Metrics) ObserveReconcile(result string, d time.Duration) {
	m.reconciles.WithLabelValues(result).Inc()
	m.reconcileDuration.Observe(d.Seconds())
}

// ObserveAction records one action (install, upgrade, ...) run on a node.
func (m *Metrics) ObserveAction(action, component, result string, d time.Duration) {
	m.actions.WithLabelValues(action, component, result).Inc()
	m.actionDuration.WithLabelValues(action).Observe(d.Seconds())
}

// ObserveProbe records one probe of a node. reason is "" for a successful
// probe, else one of inventory.Reasons (unreachable, auth, hostkey,
// timeout, sudo, probe-error): never an error message, whose text would
// make a new series each time.
func (m *Metrics) ObserveProbe(d time.Duration, reason string) {
	m.probeDuration.Observe(d.Seconds())
	if reason != "" {
		m.probeErrors.WithLabelValues(reason).Inc()
	}
}

// SetProbeInterval records the manifest's probeInterval, which the
// DroverProbeStale alert compares the age of each node's last probe with.
func (m *Metrics) SetProbeInterval(d time.Duration) {
	m.probeInterval.Set(d.Seconds())
}

// statusDescs describes the series computed from the status snapshot.
type statusDescs struct {
	manifestGeneration  *prometheus.Desc
	manifestLoadSuccess *prometheus.Desc
	manifestLastLoad    *prometheus.Desc
	nodes               *prometheus.Desc
	nodeConverged       *prometheus.Desc
	nodeLastConverged   *prometheus.Desc
	nodeReachable       *prometheus.Desc
	nodeLastProbe       *prometheus.Desc
	componentInfo       *prometheus.Desc
	rolloutHalted       *prometheus.Desc
	rolloutHaltedInfo   *prometheus.Desc
	paused              *prometheus.Desc
	suspended           *prometheus.Desc
	sshConnections      *prometheus.Desc
}

func newStatusDescs() statusDescs {
	name := func(n string) string { return prometheus.BuildFQName(namespace, "", n) }
	node := []string{"node"}
	return statusDescs{
		manifestGeneration: prometheus.NewDesc(name("manifest_generation"),
			"Generation of the manifest in force; it counts accepted manifest changes.", nil, nil),
		manifestLoadSuccess: prometheus.NewDesc(name("manifest_load_success"),
			"Whether the last attempt to load the manifest succeeded (1) or was rejected (0).", nil, nil),
		manifestLastLoad: prometheus.NewDesc(name("manifest_last_load_timestamp_seconds"),
			"Unix time the manifest in force was loaded, or 0 if none was.", nil, nil),
		nodes: prometheus.NewDesc(name("nodes"),
			"Number of nodes in each state: converged, not_converged, unreachable, or paused (not converged while drover changes nothing).", []string{"state"}, nil),
		nodeConverged: prometheus.NewDesc(name("node_converged"),
			"Whether the node is reachable and every component on it is Synced and Healthy (1) or not (0).", node, nil),
		nodeLastConverged: prometheus.NewDesc(name("node_last_converged_timestamp_seconds"),
			"Unix time the node was last seen converged, or 0 if it never was.", node, nil),
		nodeReachable: prometheus.NewDesc(name("node_reachable"),
			"Whether the last probe of the node over SSH succeeded (1) or not (0).", node, nil),
		nodeLastProbe: prometheus.NewDesc(name("node_last_probe_timestamp_seconds"),
			"Unix time of the last successful probe of the node, or 0 if it never was probed successfully.", node, nil),
		componentInfo: prometheus.NewDesc(name("component_info"),
			"A metric with a constant value of 1 for each component on each node, labelled by its desired and observed versions, sync and health.",
			[]string{"node", "component", "desired_version", "observed_version", "sync", "health"}, nil),
		rolloutHalted: prometheus.NewDesc(name("rollout_halted"),
			"Whether the rollout is halted after a failed health gate (1) or not (0).", nil, nil),
		rolloutHaltedInfo: prometheus.NewDesc(name("rollout_halted_info"),
			"A metric with a constant value of 1 while the rollout is halted, labelled by the node and component it halted on.",
			[]string{"node", "component"}, nil),
		paused: prometheus.NewDesc(name("paused"),
			"Whether the manifest pauses drover, so that it probes and reports but changes nothing (1), or not (0).", nil, nil),
		suspended: prometheus.NewDesc(name("suspended"),
			"Whether the operator suspended drover (drover suspend), so that it probes and reports but starts no action until drover resume (1), or not (0).", nil, nil),
		sshConnections: prometheus.NewDesc(name("ssh_connections"),
			"Number of SSH connections open in the pool.", nil, nil),
	}
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, ready for New.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
