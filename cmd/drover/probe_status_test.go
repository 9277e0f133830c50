package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

// statesManifest is one node with one service that has a health check.
// The cluster is paused, so the daemon in the test only probes and
// reports.
const statesManifest = `apiVersion: drover/v1
kind: Cluster
metadata: {name: states}
spec:
  paused: true
  nodes:
    - {name: m1, address: 127.0.2.1}
  components:
    - name: svc
      version: "1.0"
      files: [{path: conf/svc.cfg, template: "x"}]
      service: {exec: "{{ .Dir }}/bin/svc"}
      health: {tcp: {port: 9}}
`

// syncedSvc is svc on the node as an install leaves it, its unit in the
// given state. The probe runs a health check only on an active unit.
func syncedSvc(want *plan.DesiredComponent, active, sub string) *probes.Component {
	oc := &probes.Component{
		Name: want.Name,
		Receipt: &probes.Receipt{Component: want.Name, Version: want.Version, ArtifactSHA256: want.ArtifactSHA256,
			ConfigHash: want.ConfigHash, UnitHash: want.UnitHash},
		Active:    want.Version,
		Packages:  map[string]bool{want.Version: true},
		Files:     manifests.Digests(want.Files),
		FilesHash: want.ConfigHash,
		Unit:      probes.UnitState{Exists: true, Hash: want.UnitHash, ActiveState: active, SubState: sub, Enabled: true},
	}
	if active == "active" {
		oc.Health = probes.HealthResult{Checked: true, OK: true, Message: "connected"}
	} else {
		oc.Health = probes.HealthResult{Message: "not checked: unit is " + active}
	}
	return oc
}

// tableRow is the SYNC and HEALTH columns of NODE COMPONENT's row.
func tableRow(t *testing.T, table, node, comp string) (string, string) {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[0] == node && f[1] == comp {
			return f[4], f[5]
		}
	}
	t.Fatalf("no row for %s %s in\n%s", node, comp, table)
	return "", ""
}

// TestProbeAndStatusAgree: `drover probe` and `drover status` (the
// daemon's status, through its JSON) print the same sync and health for
// the same node in every state a unit can be in, and that is the status
// model's (docs/ARCHITECTURE.md, "One status model").
func TestProbeAndStatusAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(statesManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	_, d, err := compile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := d.Node("m1").Component("svc")
	cases := []struct {
		state  string
		comp   *probes.Component
		sync   plan.Sync
		health plan.Health
	}{
		{"active", syncedSvc(want, "active", "running"), plan.Synced, plan.Healthy},
		{"activating", syncedSvc(want, "activating", "start"), plan.Synced, plan.Progressing},
		// Crash-looping: systemd waits to start it again; it serves nothing.
		{"auto-restart", syncedSvc(want, "activating", "auto-restart"), plan.Synced, plan.Degraded},
		// A running unit re-reading its configuration is still up.
		{"reloading", syncedSvc(want, "reloading", "reload"), plan.Synced, plan.Healthy},
		{"failed", syncedSvc(want, "failed", "failed"), plan.Synced, plan.Degraded},
		{"inactive", syncedSvc(want, "inactive", "dead"), plan.Synced, plan.Degraded},
		{"missing", &probes.Component{Name: "svc", Health: probes.HealthResult{Message: "not checked: unit is inactive"}, Unit: probes.UnitState{ActiveState: "inactive", SubState: "dead"}}, plan.OutOfSync, plan.Missing},
	}
	for _, tc := range cases {
		t.Run(tc.state, func(t *testing.T) {
			obs := probes.Observed{Node: "m1", Known: true, ProbedAt: time.Now(), Components: map[string]*probes.Component{"svc": tc.comp}}

			var probeOut bytes.Buffer
			report := probeReport(d, d.Nodes, map[string]probes.Observed{"m1": obs})
			if err := writeProbeReport(&probeOut, "text", report); err != nil {
				t.Fatal(err)
			}

			ctrl := reconciler.NewController(reconciler.ControllerOptions{
				Probe: func(context.Context, inventory.Runner, inventory.Target, probes.Request) probes.Observed {
					o := obs
					o.ProbedAt = time.Now()
					return o
				},
				Log: zap.NewNop(), Workers: 1,
			})
			ctrl.SetDesired(d)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); ctrl.Run(ctx, time.Second) }()
			eventually(t, 10*time.Second, "the daemon probed m1", ctrl.Ready)
			body, err := json.Marshal(ctrl.Status())
			cancel()
			<-done
			if err != nil {
				t.Fatal(err)
			}
			var st plan.ClusterStatus
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatal(err)
			}
			var statusOut bytes.Buffer
			printStatus(&statusOut, st)

			pSync, pHealth := tableRow(t, probeOut.String(), "m1", "svc")
			sSync, sHealth := tableRow(t, statusOut.String(), "m1", "svc")
			if pSync != sSync || pHealth != sHealth {
				t.Errorf("probe says %s/%s, status says %s/%s\nprobe:\n%s\nstatus:\n%s", pSync, pHealth, sSync, sHealth, probeOut.String(), statusOut.String())
			}
			if pSync != string(tc.sync) || pHealth != string(tc.health) {
				t.Errorf("probe says %s/%s, want %s/%s\n%s", pSync, pHealth, tc.sync, tc.health, probeOut.String())
			}
			if sSync != string(tc.sync) || sHealth != string(tc.health) {
				t.Errorf("status says %s/%s, want %s/%s\n%s", sSync, sHealth, tc.sync, tc.health, statusOut.String())
			}
		})
	}
}
