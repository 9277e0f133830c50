// Package api serves the daemon's HTTP endpoints: Prometheus metrics,
// liveness and readiness, and the JSON status and plan that `drover
// status` reads.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

// Source is what the API reports on; *reconciler.Controller is one.
type Source interface {
	Status() plan.ClusterStatus
	CurrentPlan() plan.Plan
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
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseStatusQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		st := src.Status()
		var total int
		st.Nodes, total = q.apply(st.Nodes)
		if q.filtered() {
			w.Header().Set(HeaderTotalNodes, strconv.Itoa(total))
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("GET "+PathPlan, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, withEmptyLists(src.CurrentPlan()))
	})
}

// HeaderTotalNodes is, on a filtered or paged status, how many nodes
// matched the filter before limit and offset cut the page.
const HeaderTotalNodes = "X-Drover-Total-Nodes"

// statusQuery is what GET /api/v1/status may ask for, so a client of a
// fleet of thousands reads only the nodes it needs:
//
//	state=converged|notConverged|unreachable   nodes in that state
//	node=NAME (repeatable)                      only these nodes
//	offset=N, limit=N                           a page of what matched, manifest order
//
// Without parameters the whole document is served, as before. The
// cluster-level fields are always there.
type statusQuery struct {
	state         string
	names         map[string]bool
	offset, limit int // limit 0: no limit
}

// Node states a status query can select.
const (
	StateConverged    = plan.StateConverged
	StateNotConverged = plan.StateNotConverged
	StateUnreachable  = plan.StateUnreachable
)

func parseStatusQuery(v url.Values) (statusQuery, error) {
	var q statusQuery
	for key, vals := range v {
		switch key {
		case "state":
			if len(vals) != 1 {
				return q, fmt.Errorf("status query: state given %d times, want once", len(vals))
			}
			switch vals[0] {
			case StateConverged, StateNotConverged, StateUnreachable:
				q.state = vals[0]
			default:
				return q, fmt.Errorf("status query: state=%q: want %s, %s or %s", vals[0], StateConverged, StateNotConverged, StateUnreachable)
			}
		case "node":
			q.names = map[string]bool{}
			for _, n := range vals {
				if n == "" {
					return q, errors.New("status query: node= is empty")
				}
				q.names[n] = true
			}
		case "offset", "limit":
			if len(vals) != 1 {
				return q, fmt.Errorf("status query: %s given %d times, want once", key, len(vals))
			}
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 0 {
				return q, fmt.Errorf("status query: %s=%q: want a whole number, 0 or more", key, vals[0])
			}
			if key == "offset" {
				q.offset = n
			} else {
				q.limit = n
				if n == 0 {
					return q, errors.New("status query: limit=0: want 1 or more (leave it out for every node)")
				}
			}
		default:
			return q, fmt.Errorf("status query: unknown parameter %q (known: state, node, offset, limit)", key)
		}
	}
	return q, nil
}

func (q statusQuery) filtered() bool {
	return q.state != "" || q.names != nil || q.offset > 0 || q.limit > 0
}

// apply keeps the nodes q asks for, in their order, and says how many
// matched before the page was cut.
func (q statusQuery) apply(nodes []plan.NodeStatus) ([]plan.NodeStatus, int) {
	if !q.filtered() {
		return nodes, len(nodes)
	}
	kept := make([]plan.NodeStatus, 0, min(len(nodes), max(q.limit, 16)))
	total := 0
	for _, n := range nodes {
		if q.names != nil && !q.names[n.Name] {
			continue
		}
		if !n.InState(q.state) {
			continue
		}
		total++
		if total <= q.offset || q.limit > 0 && len(kept) >= q.limit {
			continue
		}
		kept = append(kept, n)
	}
	return kept, total
}

// withEmptyLists makes "no actions" [] rather than null, so clients can
// iterate without a check.
func withEmptyLists(p plan.Plan) plan.Plan {
	if p.Nodes == nil {
		p.Nodes = []plan.NodePlan{}
	}
	for i := range p.Nodes {
		if p.Nodes[i].Actions == nil {
			p.Nodes[i].Actions = []plan.Action{}
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
