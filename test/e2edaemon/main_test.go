// Package e2edaemon runs the real `drover daemon` as a subprocess against
// real systemd nodes (test/harness) and checks what issue 6 and 7 promise:
// editing the manifest (rewrite, rename as vim does, a ConfigMap symlink
// swap) rolls out a node_exporter upgrade or downgrade with no command run;
// invalid, emptied and deleted manifests change nothing; drift is repaired
// within a probe interval; an unreachable node is reported while the rest
// converge; a daemon killed mid-rollout and restarted finishes it; SIGTERM
// lets the running action finish; and a real Prometheus with the shipped
// rules fires and resolves the unreachable and not-converged alerts.
//
// One cluster of three nodes is booted in TestMain and shared; each test
// starts its own daemon on its own manifest and first brings the cluster to
// the state it needs. The tests need root and skip under -short.
package e2edaemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// shared is booted by TestMain; tests reach it through setup.
var shared = harness.NewSuite(harness.SuiteOptions{Name: "e2edaemon", Nodes: 3, NodeName: "ed"})

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

// suite is what every test of the package shares.
type suite struct {
	c       *harness.Cluster
	old     harness.Artifact // node_exporter 1.8.2
	new     harness.Artifact // node_exporter 1.9.1
	drover  string           // the binary built for this run
	work    string           // temp dir: binary, lock dir, daemon logs
	lockDir string
}

// setup is every test's first line.
func setup(t *testing.T) *suite {
	t.Helper()
	shared.Setup(t)
	return &suite{c: shared.Cluster, drover: shared.Drover, work: shared.Work, lockDir: filepath.Join(shared.Work, "lock"),
		old: shared.Artifacts[harness.ArtifactNodeExporterOld], new: shared.Artifacts[harness.ArtifactNodeExporterNew]}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
