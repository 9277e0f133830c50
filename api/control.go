package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/drover-project/drover/reconciler"
)

// Control is what the operator changes in a running daemon (drover
// suspend, resume, retry, reconcile); *reconciler.Controller is one.
type Control interface {
	SetSuspended(bool) error
	Suspended() bool
	Retry() (reconciler.Retried, error)
	ReconcileNow(nodes []string) ([]string, time.Time, error)
}

var _ Control = (*reconciler.Controller)(nil)

// Paths of the control endpoints: POST only, each behind the console
// token.
const (
	PathSuspend   = "/api/v1/suspend"
	PathResume    = "/api/v1/resume"
	PathRetry     = "/api/v1/retry"
	PathReconcile = "/api/v1/reconcile"
)

// ControlResponse is the answer of every control endpoint.
type ControlResponse struct {
	// Message says in a sentence what the daemon did.
	Message string `json:"message"`
	// Suspended is the daemon's state after the request.
	Suspended bool `json:"suspended"`
	// Halt is, for retry, the reason of the halt it lifted.
	Halt string `json:"halt,omitempty"`
	// Nodes are, for retry, the nodes whose failed action or backoff was
	// forgotten; for reconcile, the nodes queued.
	Nodes []string `json:"nodes,omitempty"`
	// QueuedAt is, for reconcile, the daemon's time when the nodes were
	// queued: a node's lastProbeAttempt at or after it answers the request.
	QueuedAt time.Time `json:"queuedAt,omitzero"`
}

// ReconcileRequest is the optional JSON body of POST /api/v1/reconcile;
// no nodes (or no body) means every node.
type ReconcileRequest struct {
	Nodes []string `json:"nodes,omitempty"`
}

// ErrorResponse is the body of every refusal: {"error": "..."}.
type ErrorResponse struct {
	Error string `json:"error"`
}

// maxControlBody bounds a control request's body (a list of node names).
const maxControlBody = 1 << 20

// RegisterControl adds the control endpoints to mux, each wrapped in
// guard (the console's console.Guard.Require: the token, same origin,
// JSON bodies only), so nothing here runs for a request without the token.
func RegisterControl(mux *http.ServeMux, ctl Control, guard func(http.Handler) http.Handler) {
	mux.Handle("POST "+PathSuspend, guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		setSuspended(w, ctl, true)
	})))
	mux.Handle("POST "+PathResume, guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		setSuspended(w, ctl, false)
	})))
	mux.Handle("POST "+PathRetry, guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r, err := ctl.Retry()
		if refusal(err) {
			writeControlError(w, err)
			return
		}
		resp := ControlResponse{Suspended: ctl.Suspended(), Halt: r.Halt, Nodes: r.Nodes}
		resp.Message = fmt.Sprintf("backoff ended on %d node(s)", len(r.Nodes))
		if r.Halt != "" {
			resp.Message = "halt lifted: " + r.Halt
		}
		if resp.Suspended {
			resp.Message += "; the daemon is still suspended: nothing starts before drover resume"
		}
		if err != nil {
			writeErrorJSON(w, http.StatusInternalServerError, resp.Message+", but the state store did not keep it (a restart would bring the halt back): "+err.Error())
			return
		}
		writeJSON(w, resp)
	})))
	mux.Handle("POST "+PathReconcile, guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req ReconcileRequest
		if err := decodeBody(r, &req); err != nil {
			writeErrorJSON(w, http.StatusBadRequest, err.Error())
			return
		}
		nodes, at, err := ctl.ReconcileNow(req.Nodes)
		if err != nil {
			writeControlError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		resp := ControlResponse{Message: fmt.Sprintf("%d node(s) queued for a probe now", len(nodes)), Suspended: ctl.Suspended(), Nodes: nodes, QueuedAt: at}
		b, _ := json.MarshalIndent(resp, "", "  ")
		w.WriteHeader(http.StatusAccepted)
		w.Write(append(b, '\n'))
	})))
}

// refusal reports whether err is the controller refusing the request
// (as opposed to the state store failing to keep what it did).
func refusal(err error) bool {
	return errors.Is(err, reconciler.ErrNoManifest) || errors.Is(err, reconciler.ErrUnknownNode) || errors.Is(err, reconciler.ErrNothingToRetry)
}

func setSuspended(w http.ResponseWriter, ctl Control, s bool) {
	was := ctl.Suspended()
	err := ctl.SetSuspended(s)
	resp := ControlResponse{Suspended: s}
	switch {
	case s && was:
		resp.Message = "already suspended: no action starts, probing goes on"
	case s:
		resp.Message = "suspended: no action starts (a running one ends), probing goes on"
	case was:
		resp.Message = "resumed: every node is looked at now"
	default:
		resp.Message = "not suspended: nothing to resume"
	}
	if err != nil {
		// The controller acts on it; only a restart would forget it.
		writeErrorJSON(w, http.StatusInternalServerError, resp.Message+", but the state store did not keep it (a restart would forget it): "+err.Error())
		return
	}
	writeJSON(w, resp)
}

// decodeBody reads an optional JSON body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// writeControlError answers a controller's refusal with its status code.
func writeControlError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, reconciler.ErrUnknownNode):
		code = http.StatusNotFound
	case errors.Is(err, reconciler.ErrNoManifest), errors.Is(err, reconciler.ErrNothingToRetry):
		code = http.StatusConflict
	}
	writeErrorJSON(w, code, err.Error())
}

func writeErrorJSON(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(ErrorResponse{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
