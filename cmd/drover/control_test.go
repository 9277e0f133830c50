package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

// controlDaemon is the daemon's control and status endpoints over a
// fake controller, on this helper's loopback range.
type controlDaemon struct {
	mu        sync.Mutex
	suspended bool
	halt      string
	probedAt  map[string]time.Time
	queued    []string
	reachable map[string]bool
}

func (d *controlDaemon) SetSuspended(s bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.suspended = s
	return nil
}

func (d *controlDaemon) Suspended() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.suspended
}

func (d *controlDaemon) Retry() (reconciler.Retried, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halt == "" {
		return reconciler.Retried{}, reconciler.ErrNothingToRetry
	}
	r := reconciler.Retried{Halt: d.halt, Nodes: []string{"n1"}}
	d.halt = ""
	return r, nil
}

// ReconcileNow "probes" the nodes a little later, as the daemon's
// workers would.
func (d *controlDaemon) ReconcileNow(nodes []string) ([]string, time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(nodes) == 0 {
		nodes = []string{"n1", "n2"}
	}
	for _, n := range nodes {
		if _, ok := d.probedAt[n]; !ok {
			return nil, time.Time{}, fmt.Errorf("%w: %q", reconciler.ErrUnknownNode, n)
		}
	}
	at := time.Now()
	d.queued = append(d.queued, nodes...)
	for _, n := range nodes {
		time.AfterFunc(300*time.Millisecond, func() {
			d.mu.Lock()
			d.probedAt[n] = time.Now()
			d.mu.Unlock()
		})
	}
	return nodes, at, nil
}

func (d *controlDaemon) Status() plan.ClusterStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := plan.ClusterStatus{Cluster: "t", Generation: 1, LoadSuccess: true, Suspended: d.suspended}
	for _, n := range []string{"n1", "n2"} {
		st.Nodes = append(st.Nodes, plan.NodeStatus{Name: n, Reachable: d.reachable[n], Converged: d.reachable[n], LastProbeAttempt: d.probedAt[n]})
	}
	return st
}

func (d *controlDaemon) CurrentPlan() plan.Plan { return plan.Plan{} }
func (d *controlDaemon) Ready() bool            { return true }

const controlTestToken = "cli-control-token-0123456789"

// startControlDaemon serves d as `drover daemon` does (the same mux) on
// 127.6.0.1, this helper's range.
func startControlDaemon(t *testing.T, d *controlDaemon) string {
	t.Helper()
	g, err := console.NewGuard(controlTestToken)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.6.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := httpMux(d, d, g.Require, prometheus.NewRegistry(), console.New(console.Options{Source: d}), nil)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestControlCommands: suspend, resume, retry and reconcile against the
// daemon's own endpoints, with the token from DROVER_TOKEN or a file,
// and the errors an operator meets: no token, a wrong token, no daemon,
// an unknown node, nothing to retry.
func TestControlCommands(t *testing.T) {
	d := &controlDaemon{halt: "upgrade app on n1 failed: boom", probedAt: map[string]time.Time{"n1": {}, "n2": {}},
		reachable: map[string]bool{"n1": true, "n2": false}}
	addr := startControlDaemon(t, d)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(controlTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("not-the-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAddr, "")
	t.Setenv(envToken, "")

	for _, tc := range []struct {
		name  string
		env   string // DROVER_TOKEN
		args  []string
		code  int
		out   string // substring of stdout
		err   string // substring of stderr
		check func(t *testing.T)
	}{
		{name: "suspend without a token", args: []string{"suspend", "--addr", addr}, code: 1, err: "needs its console token: pass --token-file FILE or set DROVER_TOKEN",
			check: func(t *testing.T) {
				if d.Suspended() {
					t.Error("suspended without a token")
				}
			}},
		{name: "suspend with a wrong token", args: []string{"suspend", "--addr", addr, "--token-file", wrongFile}, code: 1,
			err: addr + " refused the console token: wrong console token (check --token-file or DROVER_TOKEN)"},
		{name: "suspend with a wrong DROVER_TOKEN", env: "not-the-token-0123456789", args: []string{"suspend", "--addr", addr}, code: 1,
			err: "refused the console token"},
		{name: "suspend", env: controlTestToken, args: []string{"suspend", "--addr", addr}, out: addr + ": suspended: no action starts",
			check: func(t *testing.T) {
				if !d.Suspended() {
					t.Error("not suspended")
				}
			}},
		{name: "status says suspended", args: []string{"status", "--addr", addr}, out: "SUSPENDED by the operator"},
		{name: "resume with the token file", args: []string{"resume", "--addr", addr, "--token-file", tokenFile}, out: "resumed: every node is looked at now",
			check: func(t *testing.T) {
				if d.Suspended() {
					t.Error("still suspended")
				}
			}},
		{name: "retry", env: controlTestToken, args: []string{"retry", "--addr", addr}, out: "halt lifted: upgrade app on n1 failed: boom\nretried on: n1"},
		{name: "retry with nothing to retry", env: controlTestToken, args: []string{"retry", "--addr", addr}, code: 1, err: addr + ": nothing to retry"},
		{name: "reconcile an unknown node", env: controlTestToken, args: []string{"reconcile", "--addr", addr, "--node", "n9"}, code: 1,
			err: addr + `: no such node in the manifest in force: "n9"`},
		{name: "reconcile a node and wait", env: controlTestToken, args: []string{"reconcile", "--addr", addr, "--node", "n1"},
			out: "1 node(s) queued for a probe now", check: func(t *testing.T) {
				d.mu.Lock()
				defer d.mu.Unlock()
				if d.probedAt["n1"].IsZero() || !d.probedAt["n2"].IsZero() {
					t.Errorf("probes: %v, want n1 alone", d.probedAt)
				}
			}},
		{name: "reconcile every node, one unreachable", env: controlTestToken, args: []string{"reconcile", "--addr", addr}, code: 1,
			out: "2 node(s) queued for a probe now"},
		{name: "no daemon", env: controlTestToken, args: []string{"suspend", "--addr", "127.6.0.2:1"}, code: 1, err: "no drover daemon answering on 127.6.0.2:1"},
		{name: "not a drover daemon's control", env: controlTestToken, args: []string{"suspend", "--addr", fakeDaemonOn(t)}, code: 1,
			err: "has no /api/v1/suspend (404 Not Found): is it an older drover daemon?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envToken, tc.env)
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nwant %q\nstderr:\n%s\nwant %q", code, tc.code, out, tc.out, errOut, tc.err)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// fakeDaemonOn serves 404 for everything, as a daemon before the control
// endpoints (or another server) does.
func fakeDaemonOn(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.6.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

var _ api.Control = (*controlDaemon)(nil)
