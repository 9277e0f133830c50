// Package api serves the daemon's HTTP endpoints: Prometheus metrics,
// liveness and readiness, and the JSON status and plan that `drover
// status` reads.
package api

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drover-project/drover/reconciler"
)

// Source is what the API reports on; *reconciler.Controller is one.
type Source interface {
	Status() reconciler.ClusterStatus
	CurrentPlan() reconciler.Plan
	Ready() bool
}

var _ Source = (*reconciler.Controller)(nil)

// Paths of the endpoints.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathStatus  = "/api/v1/status"
	PathPlan    = "/api/v1/plan"
)

// Handler routes every endpoint, with a plain-text index at "/".
func Handler(src Source, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	Register(mux, src, gatherer)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("drover\n\n" + PathMetrics + "\n" + PathHealthz + "\n" + PathReadyz + "\n" + PathStatus + "\n" + PathPlan + "\n"))
	})
	return mux
}

// Register adds every endpoint but the index to mux, so the daemon can
// serve them beside the web console (which takes "/").
func Register(mux *http.ServeMux, src Source, gatherer prometheus.Gatherer) {
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	// Ready once every node has been probed: before that, status and
	// metrics would report a cluster the daemon has not looked at.
	mux.HandleFunc("GET "+PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "first probe round not done", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, src.Status())
	})
	mux.HandleFunc("GET "+PathPlan, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, withEmptyLists(src.CurrentPlan()))
	})
}

// withEmptyLists makes "no actions" [] rather than null, so clients can
// iterate without a check.
func withEmptyLists(p reconciler.Plan) reconciler.Plan {
	if p.Nodes == nil {
		p.Nodes = []reconciler.NodePlan{}
	}
	for i := range p.Nodes {
		if p.Nodes[i].Actions == nil {
			p.Nodes[i].Actions = []reconciler.Action{}
		}
	}
	return p
}

func writeJSON(w http.ResponseWriter, v any) {
	// Encoded first, so a failure is a clean 500 and not half a document.
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
